// Command admin is the small admin tool an operator keeps next to an
// application configured with Strata: it changes the application's typed
// configuration in etcd the safe way.
//
// It reads the current configuration with config.Writer[App], shows what a
// change would do (a dry run: every key, old -> new), asks for confirmation,
// and commits it with the author, a message and the version it was shown as
// the expected version, so that a change made by someone else in the
// meantime is never overwritten. It ends with the release history.
//
// Without --endpoints it starts an embedded etcd on a loopback port and
// stores a first release there, so it runs with nothing installed:
//
//	go run ./examples/admin                                  # show the configuration and its history
//	go run ./examples/admin -set db.pool=20 -m 'more connections'
//	go run ./examples/admin -set port=8443 -set db.host=db2.internal -yes
//	go run ./examples/admin -set port=70000                  # rejected: port failed max=65535
//
// Against a real cluster (the data of an embedded etcd is gone when the
// program exits):
//
//	go run ./examples/admin --endpoints 127.0.0.1:2379 --prefix /strata/payments/prod -set db.pool=20
//	go run ./examples/admin --endpoints 127.0.0.1:2379 --prefix /strata/payments/prod -rollback 3
//
// Flags: -set PATH=VALUE (repeatable; all of them are one release), -rollback
// N, -author (default: the OS user), -m/-message, -yes (do not ask),
// -write-id (resend a write whose outcome was unknown), -timeout (each etcd
// step), -history N (entries listed).
//
// Exit codes: 0 done, 1 error or declined, 2 usage, 3 conflict (someone
// else wrote first), 4 invalid (nothing written), 5 the outcome of the
// commit is unknown (see the message: it was committed at most once).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// App is the application's configuration, as the application declares it.
type App struct {
	Name string `koanf:"name" validate:"required"`
	Port int    `koanf:"port" validate:"min=1,max=65535"`
	DB   DB     `koanf:"db"`
}

// DB is the application's database connection.
type DB struct {
	Host string `koanf:"host" validate:"required,hostname"`
	Pool int    `koanf:"pool" validate:"min=1,max=100"`
}

// defaults are the values the application passes to config.WithDefaults:
// the writer validates the whole configuration over them.
var defaults = App{Port: 8080, DB: DB{Pool: 10}}

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1 // an error, or the change was declined
	exitUsage    = 2
	exitConflict = 3
	exitInvalid  = 4
	exitUnknown  = 5
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the parsed command line.
type options struct {
	endpoints string
	prefix    string
	sets      setFlags
	rollback  int64
	author    string
	message   string
	yes       bool
	writeID   string
	timeout   time.Duration
	history   int
}

// setFlags collects repeated -set PATH=VALUE flags.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.endpoints, "endpoints", "", "comma-separated etcd endpoints (default: start an embedded etcd)")
	fs.StringVar(&o.prefix, "prefix", "/strata/admin/dev", "the application's key prefix")
	fs.Var(&o.sets, "set", "PATH=VALUE to set, e.g. db.pool=20 (repeatable; one release)")
	fs.Int64Var(&o.rollback, "rollback", 0, "restore release `N` as a new release")
	fs.StringVar(&o.author, "author", osUser(), "who makes the change")
	fs.StringVar(&o.message, "message", "", "why the change is made")
	fs.StringVar(&o.message, "m", "", "shorthand for -message")
	fs.BoolVar(&o.yes, "yes", false, "commit without asking")
	fs.StringVar(&o.writeID, "write-id", "", "id of the write; resend a write whose outcome was unknown with the id it printed")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "bounds each etcd step")
	fs.IntVar(&o.history, "history", 10, "how many history entries to list")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case len(o.sets) > 0 && o.rollback != 0:
		return nil, errors.New("-set and -rollback cannot be combined")
	case o.rollback < 0:
		return nil, errors.New("-rollback needs a release version >= 1")
	case strings.Contains(o.writeID, "/"):
		return nil, errors.New("-write-id must not contain '/'")
	}
	if o.writeID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.writeID = "admin-" + hex.EncodeToString(b[:])
	}
	return o, nil
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// newClient connects to etcd; tests replace it.
var newClient = func(endpoints []string) (*clientv3.Client, error) {
	return etcdprov.NewClient(etcdprov.ClientConfig{Endpoints: endpoints})
}

// newWriter is the one place the typed writer is built.
func newWriter(cli *clientv3.Client, prefix string) (*config.Writer[App], error) {
	return config.NewWriter[App](cli, prefix, config.WithWriterDefaults(defaults))
}

// run is the program: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "admin:", err)
		return exitUsage
	}
	tree, err := parseSets(o.sets)
	if err != nil {
		fmt.Fprintln(stderr, "admin:", err)
		var be *codec.BindError
		if errors.As(err, &be) {
			return exitInvalid
		}
		return exitUsage
	}

	a := &admin{o: o, in: bufio.NewReader(stdin), out: stdout, errOut: stderr}
	embedded := o.endpoints == ""
	endpoints := strings.Split(o.endpoints, ",")
	if embedded {
		fmt.Fprintln(stdout, "starting an embedded etcd on loopback (its data is gone on exit; use --endpoints for a real cluster) ...")
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		etcd, err := etcdtest.Start(sctx, 1)
		cancel()
		if err != nil {
			fmt.Fprintln(stderr, "admin:", err)
			return exitError
		}
		defer etcd.Close()
		endpoints = etcd.Endpoints()
	}
	cli, err := newClient(endpoints)
	if err != nil {
		fmt.Fprintln(stderr, "admin:", err)
		return exitError
	}
	defer cli.Close()
	if a.w, err = newWriter(cli, o.prefix); err != nil {
		fmt.Fprintln(stderr, "admin:", err)
		return exitError
	}
	defer a.w.Close()
	if embedded {
		if err := a.seed(ctx); err != nil {
			fmt.Fprintln(stderr, "admin:", err)
			return exitError
		}
	}

	code := exitOK
	switch {
	case len(tree) > 0:
		code = a.change(ctx, func(ctx context.Context, opts ...config.WriteOption) (*config.Release, error) {
			return a.w.Update(ctx, func(app *App) error { return bindSets(tree, app) }, opts...)
		})
	case o.rollback > 0:
		code = a.change(ctx, func(ctx context.Context, opts ...config.WriteOption) (*config.Release, error) {
			return a.w.Rollback(ctx, o.rollback, opts...)
		})
	default:
		if _, _, err := a.show(ctx); err != nil {
			code = a.fail(err)
		}
	}
	if code == exitOK {
		if err := a.listHistory(ctx); err != nil {
			fmt.Fprintln(stderr, "admin:", err)
			return exitError
		}
	}
	return code
}

// parseSets turns -set PATH=VALUE flags into a tree of text leaves, and
// checks that every path names a field of App and every value parses as
// its type.
func parseSets(sets []string) (map[string]any, error) {
	tree := map[string]any{}
	for _, s := range sets {
		p, v, ok := strings.Cut(s, "=")
		if !ok || p == "" {
			return nil, fmt.Errorf("-set %q: want PATH=VALUE, e.g. db.pool=20", s)
		}
		segs := strings.Split(p, ".")
		m := tree
		for i, seg := range segs {
			if seg == "" {
				return nil, fmt.Errorf("-set %q: empty path segment", s)
			}
			if i == len(segs)-1 {
				if _, dup := m[seg]; dup {
					return nil, fmt.Errorf("-set %q: %s is given twice", s, p)
				}
				m[seg] = v
				break
			}
			next, ok := m[seg].(map[string]any)
			if !ok {
				if _, leaf := m[seg]; leaf {
					return nil, fmt.Errorf("-set %q: %s is also set as a value", s, strings.Join(segs[:i+1], "."))
				}
				next = map[string]any{}
				m[seg] = next
			}
			m = next
		}
	}
	if len(tree) == 0 {
		return nil, nil
	}
	if err := bindSets(tree, new(App)); err != nil {
		return nil, err
	}
	return tree, nil
}

// bindSets sets the values of tree on app.
func bindSets(tree map[string]any, app *App) error {
	unused, err := codec.Bind(tree, app)
	if len(unused) > 0 {
		return fmt.Errorf("-set: no such field: %s", strings.Join(unused, ", "))
	}
	if err != nil {
		return fmt.Errorf("-set: %w", err)
	}
	return nil
}

// admin holds what one run works with.
type admin struct {
	o           *options
	w           *config.Writer[App]
	in          *bufio.Reader
	out, errOut io.Writer
}

// step bounds one etcd step by -timeout.
func (a *admin) step(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.o.timeout)
}

// seed stores a first release in an empty embedded etcd.
func (a *admin) seed(ctx context.Context) error {
	ctx, cancel := a.step(ctx)
	defer cancel()
	_, err := a.w.Replace(ctx, &App{Name: "payments", Port: 8080, DB: DB{Host: "db.internal", Pool: 10}},
		config.Author("admin-example"), config.Message("initial configuration"), config.ExpectVersion(0))
	return err
}

// show prints the current configuration and returns its version.
func (a *admin) show(ctx context.Context) (*App, int64, error) {
	ctx, cancel := a.step(ctx)
	defer cancel()
	app, version, rev, err := a.w.Get(ctx)
	if err != nil {
		return nil, 0, err
	}
	fmt.Fprintf(a.out, "\n%s is at version %d (etcd revision %d):\n", a.o.prefix, version, rev)
	fmt.Fprintf(a.out, "  name     %s\n  port     %d\n  db.host  %s\n  db.pool  %d\n", app.Name, app.Port, app.DB.Host, app.DB.Pool)
	return app, version, nil
}

// writeFunc is one change, made with the options it is given.
type writeFunc func(ctx context.Context, opts ...config.WriteOption) (*config.Release, error)

// change shows the dry run of write, asks, and commits it against the
// version it showed; after a conflict it shows what changed and starts over.
func (a *admin) change(ctx context.Context, write writeFunc) int {
	conflicted := false
	for attempt := 1; ; attempt++ {
		_, version, err := a.show(ctx)
		if err != nil {
			return a.fail(err)
		}
		expect := config.ExpectVersion(version)
		dctx, cancel := a.step(ctx)
		dry, err := write(dctx, config.DryRun(), expect)
		cancel()
		if errors.Is(err, config.ErrConflict) && attempt < 10 {
			continue // someone wrote between the read and the dry run
		}
		if err != nil {
			return a.fail(err)
		}
		if len(dry.Changes) == 0 {
			fmt.Fprintln(a.out, "\nnothing to change: the configuration already has these values")
			return exitOK
		}
		fmt.Fprintf(a.out, "\nversion %d would change %d key(s):\n", dry.Version, len(dry.Changes))
		printChanges(a.out, dry.Changes)
		if !a.confirm(fmt.Sprintf("write version %d as %s?", dry.Version, a.o.author)) {
			fmt.Fprintln(a.out, "declined: nothing written")
			if conflicted {
				return exitConflict
			}
			return exitError
		}

		cctx, cancel := a.step(ctx)
		rel, err := write(cctx, expect, config.Author(a.o.author), config.Message(a.o.message), config.WriteID(a.o.writeID))
		cancel()
		switch {
		case err == nil:
			fmt.Fprintf(a.out, "wrote version %d at etcd revision %d\n", rel.Version, rel.Revision)
			return exitOK
		case errors.Is(err, config.ErrConflict):
			conflicted = true
			fmt.Fprintf(a.out, "\nconflict: %v\nsomeone else wrote first; nothing of yours was written. What changed since version %d:\n", err, version)
			if err := a.printSince(ctx, version); err != nil {
				return a.fail(err)
			}
			if a.o.yes {
				fmt.Fprintln(a.out, "not retrying with -yes: check the change above, then run the command again")
				return exitConflict
			}
			fmt.Fprintln(a.out, "\nyour change, again, on top of the current configuration:")
		case errors.Is(err, config.ErrUnknownOutcome):
			return a.unknownOutcome(ctx, err, version, dry.Hash)
		default:
			return a.fail(err)
		}
	}
}

// printSince prints the history entries newer than version.
func (a *admin) printSince(ctx context.Context, version int64) error {
	ctx, cancel := a.step(ctx)
	defer cancel()
	hist, err := a.w.History(ctx, 0)
	if err != nil {
		return err
	}
	for _, r := range hist {
		if !r.Unrecorded && r.Version <= version {
			break
		}
		if r.Unrecorded {
			fmt.Fprintln(a.out, "  written around the writer (etcdctl?):")
		} else {
			fmt.Fprintf(a.out, "  version %d by %s (%q):\n", r.Version, r.Author, r.Message)
		}
		printChanges(a.out, r.Changes)
	}
	return nil
}

// unknownOutcome explains a commit whose answer was lost and looks for it
// in the history.
func (a *admin) unknownOutcome(ctx context.Context, err error, version int64, hash string) int {
	fmt.Fprintf(a.out, "\nthe answer to the commit was lost: %v\n", err)
	fmt.Fprintln(a.out, "The write was sent once, so it was committed at most once: never twice. Looking for it in the history ...")
	// etcd may be unreachable for a while: keep trying for a bounded time.
	cctx, cancel := context.WithTimeout(ctx, max(a.o.timeout, 10*time.Second))
	defer cancel()
	for {
		hctx, hcancel := a.step(cctx)
		hist, herr := a.w.History(hctx, a.o.history)
		hcancel()
		if herr == nil {
			for _, r := range hist {
				if !r.Unrecorded && r.Version > version && r.Hash == hash {
					fmt.Fprintf(a.out, "it was committed: version %d at etcd revision %d, by %s\n", r.Version, r.Revision, r.Author)
					return exitOK
				}
			}
			// Only the newest entries were searched: the commit may be
			// older than they are, or still landing.
			fmt.Fprintf(a.out, "it was not found %s: it may be older, or still landing, or not committed. Run the same command again with -write-id %s:\n"+
				"if the lost commit turns up after all, that returns it instead of writing a second time.\n", a.searched(), a.o.writeID)
			return exitUnknown
		}
		select {
		case <-cctx.Done():
			fmt.Fprintf(a.out, "cannot read the history (%v). When etcd answers, run the same command again with -write-id %s:\n"+
				"it returns the earlier commit if there was one, and writes once otherwise.\n", herr, a.o.writeID)
			return exitUnknown
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// searched names the history entries unknownOutcome looks through: "in
// the newest 10 releases" (-history N), or "in the history" for all.
func (a *admin) searched() string {
	switch {
	case a.o.history <= 0:
		return "in the history"
	case a.o.history == 1:
		return "in the newest release"
	}
	return fmt.Sprintf("in the newest %d releases", a.o.history)
}

// fail reports err and returns its exit code.
func (a *admin) fail(err error) int {
	var ie *config.InvalidError
	var be *codec.BindError
	switch {
	case errors.As(err, &ie):
		fmt.Fprintln(a.errOut, "admin: rejected, nothing written: the configuration would be invalid:")
		for _, p := range ie.Problems {
			fmt.Fprintln(a.errOut, "  "+p.String())
		}
		return exitInvalid
	case errors.As(err, &be):
		fmt.Fprintln(a.errOut, "admin: rejected, nothing written:")
		for _, f := range be.Fields {
			fmt.Fprintln(a.errOut, "  "+f.Error())
		}
		return exitInvalid
	case errors.Is(err, config.ErrInvalid):
		fmt.Fprintln(a.errOut, "admin: rejected, nothing written:", err)
		return exitInvalid
	case errors.Is(err, config.ErrNotFound):
		fmt.Fprintln(a.errOut, "admin:", err)
		return exitError
	}
	fmt.Fprintln(a.errOut, "admin:", err)
	return exitError
}

// confirm asks a y/N question; -yes answers it.
func (a *admin) confirm(question string) bool {
	if a.o.yes {
		return true
	}
	fmt.Fprintf(a.out, "%s [y/N] ", question)
	line, err := a.in.ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(a.out)
		return false
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// printChanges prints key changes as "kind key old -> new".
func printChanges(out io.Writer, changes []config.KeyChange) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, c := range changes {
		old, new := show(c.Old), show(c.New)
		switch c.Kind {
		case config.Added:
			old = "(none)"
		case config.Deleted:
			new = "(none)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s -> %s\n", c.Kind, c.Key, old, new)
	}
	tw.Flush()
}

// show renders a value text, making the empty text visible.
func show(v string) string {
	if v == "" || strings.TrimSpace(v) != v {
		return fmt.Sprintf("%q", v)
	}
	return v
}

// listHistory prints the newest releases as a table.
func (a *admin) listHistory(ctx context.Context) error {
	ctx, cancel := a.step(ctx)
	defer cancel()
	hist, err := a.w.History(ctx, a.o.history)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "\nhistory of %s (newest first):\n", a.o.prefix)
	tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tREVISION\tTIME\tAUTHOR\tMESSAGE\tCHANGES")
	for _, r := range hist {
		version, when, author, msg := fmt.Sprint(r.Version), r.Time.Local().Format("2006-01-02 15:04:05"), r.Author, r.Message
		if r.Unrecorded {
			version, when, author, msg = "-", "-", "(around the writer)", "unrecorded"
		}
		if r.RollbackOf > 0 {
			msg = strings.TrimSpace(fmt.Sprintf("%s (rollback to %d)", msg, r.RollbackOf))
		}
		keys := make([]string, len(r.Changes))
		for i, c := range r.Changes {
			keys[i] = c.Key
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", version, r.Revision, when, dash(author), dash(msg), dash(strings.Join(keys, " ")))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
