package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/config/secret"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// app is one run of the program: its streams and global flags.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	g      globals
	cmdCtx context.Context // the command's context, bounded by --command-timeout
	ring   *secret.Ring    // the keyring of --key-file, once read (keyring)
}

// globals are the flags every command has.
type globals struct {
	endpoints      string
	prefix         string
	user           string
	password       string
	cacert         string
	cert           string
	key            string
	dialTimeout    time.Duration
	commandTimeout time.Duration
	keyFile        string // --key-file: the keys that seal secret values
}

// envFallbacks lists, per global flag, the environment variables read (in
// order) when the flag is not given.
var envFallbacks = []struct {
	flag string
	envs []string
}{
	{"endpoints", []string{"STRATA_ENDPOINTS", "ETCDCTL_ENDPOINTS"}},
	{"prefix", []string{"STRATA_PREFIX"}},
	{"user", []string{"STRATA_USER"}},
	{"password", []string{"STRATA_PASSWORD"}},
	{"cacert", []string{"STRATA_CACERT"}},
	{"cert", []string{"STRATA_CERT"}},
	{"key", []string{"STRATA_KEY"}},
	{"dial-timeout", []string{"STRATA_DIAL_TIMEOUT"}},
	{"command-timeout", []string{"STRATA_COMMAND_TIMEOUT"}},
	{"key-file", []string{"STRATA_KEY_FILE"}},
}

const rootLong = `strata reads, checks and changes the configuration that Strata applications
load from etcd, under one key prefix P:

  P/data/...        the configuration (leaf keys a/b/c and documents a.yaml)
  P/meta/version    the newest release version, changed by every write
  P/meta/releases/  one record per write (history, rollback)
  P/meta/schema     the JSON Schema the content is checked against
  P/meta/rollout    the rollout of a change to canaries first (strata rollout)

Every write is one compare-and-swap transaction that is checked against the
schema published at P/meta/schema (or --schema FILE) and recorded as a new
release. Values of fields the schema marks secret ("x-secret" or
"writeOnly") are shown as ****** everywhere. With --key-file, the writes
seal them (AES-256-GCM) in the data keys and the release records, so that
etcd holds only envelopes (strata:enc:v1:<key-id>:...); strata secrets
keygen makes a key file, get --show-secrets opens the values, and strata
secrets rotate re-seals them under a new key. strata roles create makes
least-privilege etcd roles for applications, operators and auditors.

Global flags fall back to environment variables: --endpoints to
STRATA_ENDPOINTS then ETCDCTL_ENDPOINTS, and every other --flag-name to
STRATA_FLAG_NAME (STRATA_PREFIX, STRATA_USER, STRATA_PASSWORD, STRATA_CACERT,
STRATA_CERT, STRATA_KEY, STRATA_DIAL_TIMEOUT, STRATA_COMMAND_TIMEOUT,
STRATA_KEY_FILE).
Colours are used only on a terminal and never when NO_COLOR is set to a
non-empty value. --command-timeout 0 means no limit.

` + exitCodesHelp

// run is the program: it parses args, runs the command and returns the exit
// code. Errors are printed on stderr as one line.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if isCobraUsage(err) {
		err = &usageError{err}
	}
	err = a.explain(err)
	if etcdprov.ErrorIsAuth(err) {
		if user, _, _ := strings.Cut(a.g.user, ":"); user != "" && !strings.Contains(err.Error(), strconv.Quote(user)) {
			err = fmt.Errorf("%w (as etcd user %q)", err, user)
		}
	}
	var ue *usageError
	if errors.As(err, &ue) && cmd != nil {
		err = fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	}
	printError(stderr, err)
	return exitCode(err)
}

// isCobraUsage recognises the usage errors cobra makes itself.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument",
		"invalid argument", "required flag", "accepts ", "requires at least", "requires at most", "bad flag syntax"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "Read, check and change Strata configuration in etcd",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noSubcommand,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.applyEnv(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	f := root.PersistentFlags()
	f.StringVar(&a.g.endpoints, "endpoints", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	f.StringVar(&a.g.prefix, "prefix", "", "the key prefix P of the configuration (required by data commands)")
	f.StringVar(&a.g.user, "user", "", "etcd user: name or name:password")
	f.StringVar(&a.g.password, "password", "", "etcd password (when --user gives only the name)")
	f.StringVar(&a.g.cacert, "cacert", "", "verify the etcd servers with this CA bundle (PEM file)")
	f.StringVar(&a.g.cert, "cert", "", "client certificate for TLS (PEM file)")
	f.StringVar(&a.g.key, "key", "", "client key for TLS (PEM file)")
	f.DurationVar(&a.g.dialTimeout, "dial-timeout", 2*time.Second, "fail when no endpoint answers within this time")
	f.DurationVar(&a.g.commandTimeout, "command-timeout", 10*time.Second, "bound the etcd requests of one command (0: no limit)")
	f.StringVar(&a.g.keyFile, "key-file", "", "key file (strata secrets keygen) whose keys seal secret values on write and open them (get --show-secrets); not the TLS --key")

	get, set, del := a.getCommand(), a.setCommand(), a.deleteCommand()
	get.Args = withPath(get.Args, true) // get "" is the whole tree, as get
	set.Args = withPath(set.Args, false)
	del.Args = withPath(del.Args, false)
	root.AddCommand(
		get,
		set,
		del,
		a.pushCommand(),
		a.diffCommand(),
		a.validateCommand(),
		a.editCommand(),
		a.historyCommand(),
		a.rollbackCommand(),
		a.watchCommand(),
		a.schemaCommand(),
		a.statusCommand(),
		a.rolloutCommand(),
		a.secretsCommand(),
		a.rolesCommand(),
		a.serveCommand(),
		a.versionCommand(),
	)
	for _, c := range root.Commands() {
		c.SilenceErrors, c.SilenceUsage = true, true
	}
	return root
}

// applyEnv fills the global flags not given on the command line from the
// environment.
func (a *app) applyEnv(cmd *cobra.Command) error {
	for _, fb := range envFallbacks {
		fl := cmd.Flags().Lookup(fb.flag)
		if fl == nil || fl.Changed {
			continue
		}
		for _, env := range fb.envs {
			v, ok := os.LookupEnv(env)
			if !ok || v == "" {
				continue
			}
			if err := fl.Value.Set(v); err != nil {
				return usagef("environment variable %s=%q: %v", env, v, err)
			}
			break
		}
	}
	return nil
}

// Argument checks that fail with usage errors.

// noSubcommand is the Args of a command that only groups others: an
// argument is an unknown command, with cobra's suggestions of the names
// it may stand for.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	err := usagef("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		for i := range s {
			s[i] = strconv.Quote(s[i])
		}
		err = usagef("unknown command %q for %q; did you mean %s?", args[0], cmd.CommandPath(), strings.Join(s, " or "))
	}
	return err
}

// withPath adds to args the check of a first argument that is a dotted
// config PATH, as the writer checks it: a bad one is a usage error.
// allowEmpty accepts "".
func withPath(args cobra.PositionalArgs, allowEmpty bool) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := args(cmd, a); err != nil {
			return err
		}
		if len(a) > 0 && (a[0] != "" || !allowEmpty) {
			return checkPath(a[0])
		}
		return nil
	}
}

// checkPath checks a dotted config path (db.port) by the writer's rule
// (etcdprov.LeafRel), in the CLI's words.
func checkPath(p string) error {
	if _, err := etcdprov.LeafRel(p); err != nil {
		if p == "" || strings.Contains(p, "/") {
			return usagef("PATH %q is not a dotted config path (like db.port)", p)
		}
		return usagef("PATH %q has an empty path segment (want a dotted config path like db.port)", p)
	}
	return nil
}

func exactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("missing %s", strings.Join(names[len(args):], " and "))
		}
		if len(args) > n {
			return usagef("unexpected argument %q", args[n])
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("unexpected argument %q", args[n])
		}
		return nil
	}
}
