// Command admin is the program an operator keeps next to a service: it
// reads the service's configuration with config.Writer, shows what a change
// would do, asks, commits it with an author and a message, and lists the
// history. It handles the three answers a write can get besides success:
// a conflict (someone wrote first), an invalid configuration, and a commit
// whose answer was lost.
//
// Without -endpoints it starts an embedded etcd on loopback and seeds it,
// so it runs with nothing installed:
//
//	go run ./examples/admin -set db.pool=20 -m 'more connections' -yes
//	go run ./examples/admin -set port=0 -yes          # refused: port fails min=1
//	go run ./examples/admin -endpoints 127.0.0.1:2379 -prefix /strata/payments/prod -history 10
//	go run ./examples/admin -rollback 3 -yes
package main

import (
	"bufio"
	"context"
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

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// App is the service's configuration type, shared with the service. The
// service's own file provides db.host; etcd holds the overrides.
type App struct {
	Name string `koanf:"name" validate:"required"`
	Port int    `koanf:"port" validate:"required,min=1,max=65535"`
	DB   struct {
		Host     string        `koanf:"host" validate:"required"`
		Pool     int           `koanf:"pool" validate:"omitempty,min=1,max=100"`
		Timeout  time.Duration `koanf:"timeout"`
		Password string        `koanf:"password" secret:"true"`
	} `koanf:"db"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// sets collects repeated -set path=value flags.
type sets []string

func (s *sets) String() string     { return strings.Join(*s, ",") }
func (s *sets) Set(v string) error { *s = append(*s, v); return nil }

// run is the program; it returns the exit code: 0 done (or nothing to do),
// 1 error, 2 usage, 3 conflict, 4 invalid, 5 outcome unknown.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoints := fs.String("endpoints", "", "etcd endpoints, comma-separated (default: start an embedded etcd)")
	prefix := fs.String("prefix", "/strata/payments/prod", "the configuration's key prefix")
	var set sets
	fs.Var(&set, "set", "path=value to change (repeatable), e.g. -set db.pool=20")
	rollback := fs.Int64("rollback", 0, "restore release N as a new release")
	author := fs.String("author", "", "who makes the change (default: the OS user)")
	message := fs.String("m", "", "why the change is made")
	yes := fs.Bool("yes", false, "commit without asking")
	history := fs.Int("history", 5, "list this many releases at the end (0: none)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(set) > 0 && *rollback > 0 {
		fmt.Fprintln(stderr, "admin: give -set or -rollback, not both")
		return 2
	}
	if *author == "" {
		*author = "admin"
		if u, err := user.Current(); err == nil {
			*author = u.Username
		}
	}

	cli, done, err := connect(ctx, *endpoints, *prefix)
	if err != nil {
		fmt.Fprintln(stderr, "admin:", err)
		return 1
	}
	defer done()
	w, err := config.NewWriter[App](cli, *prefix)
	if err != nil {
		fmt.Fprintln(stderr, "admin:", err)
		return 1
	}
	a := &admin{w: w, in: bufio.NewReader(stdin), out: stdout, errOut: stderr, yes: *yes,
		opts: []config.WriteOption{config.Author(*author), config.Message(*message)}}

	code := 0
	switch {
	case len(set) > 0:
		code = a.change(ctx, set)
	case *rollback > 0:
		code = a.rollback(ctx, *rollback)
	default:
		code = a.show(ctx)
	}
	if *history > 0 && code != 1 {
		if err := a.history(ctx, *history); err != nil {
			fmt.Fprintln(stderr, "admin:", err)
			return 1
		}
	}
	return code
}

// admin holds what one run works with.
type admin struct {
	w           *config.Writer[App]
	in          *bufio.Reader
	out, errOut io.Writer
	yes         bool
	opts        []config.WriteOption
}

// show prints the configuration as etcd holds it.
func (a *admin) show(ctx context.Context) int {
	cur, version, revision, err := a.w.Get(ctx)
	if err != nil {
		return a.report(err)
	}
	fmt.Fprintf(a.out, "version %d (revision %d): name=%s port=%d db.pool=%d db.timeout=%s\n",
		version, revision, cur.Name, cur.Port, cur.DB.Pool, cur.DB.Timeout)
	return 0
}

// change sets each path=value in one release: a dry run first, then the
// commit, expecting the version the dry run saw.
func (a *admin) change(ctx context.Context, set []string) int {
	c := make(config.Content)
	for _, s := range set {
		path, value, ok := strings.Cut(s, "=")
		if !ok || path == "" {
			fmt.Fprintf(a.errOut, "admin: -set %q: want path=value\n", s)
			return 2
		}
		c[strings.ReplaceAll(path, ".", "/")] = value
	}
	modify := func(cur config.Content) error {
		for k, v := range c {
			cur[k] = v
		}
		return nil
	}
	// The typed writer's Raw side validates as App, so text values from
	// the command line are checked exactly as Update would check them.
	_, version, _, err := a.w.Get(ctx)
	if err != nil {
		return a.report(err)
	}
	dry, err := a.w.Raw().Modify(ctx, modify, config.DryRun())
	if err != nil {
		return a.report(err)
	}
	if !a.confirm(dry) {
		return 0
	}
	rel, err := a.w.Raw().Modify(ctx, modify, append(a.opts, config.ExpectVersion(version))...)
	if err != nil {
		return a.report(err)
	}
	fmt.Fprintf(a.out, "committed version %d at revision %d\n", rel.Version, rel.Revision)
	return 0
}

// rollback restores release n as a new release.
func (a *admin) rollback(ctx context.Context, n int64) int {
	rel, _, err := a.w.Release(ctx, n)
	if err != nil {
		return a.report(err)
	}
	fmt.Fprintf(a.out, "release %d by %s at %s: %s\n", rel.Version, rel.Author, rel.Time.Format(time.RFC3339), rel.Message)
	dry, err := a.w.Rollback(ctx, n, config.DryRun())
	if err != nil {
		return a.report(err)
	}
	if !a.confirm(dry) {
		return 0
	}
	got, err := a.w.Rollback(ctx, n, append(a.opts, config.ExpectVersion(dry.Version-1))...)
	if err != nil {
		return a.report(err)
	}
	fmt.Fprintf(a.out, "committed version %d at revision %d\n", got.Version, got.Revision)
	return 0
}

// confirm shows the diff of a dry run and asks; false means do nothing.
func (a *admin) confirm(dry *config.Release) bool {
	if len(dry.Changes) == 0 {
		fmt.Fprintln(a.out, "no changes: nothing to do")
		return false
	}
	printChanges(a.out, dry.Changes)
	if a.yes {
		return true
	}
	fmt.Fprintf(a.out, "commit version %d? [y/N] ", dry.Version)
	answer, _ := a.in.ReadString('\n')
	if strings.TrimSpace(strings.ToLower(answer)) != "y" {
		fmt.Fprintln(a.out, "cancelled")
		return false
	}
	return true
}

// report explains a failed write and returns the exit code.
func (a *admin) report(err error) int {
	var ie *config.InvalidError
	var ce *config.ConflictError
	switch {
	case errors.As(err, &ie):
		fmt.Fprintln(a.errOut, "admin: refused, the configuration would be invalid; nothing was written:")
		for _, p := range ie.Problems {
			fmt.Fprintf(a.errOut, "  %s\n", p)
		}
		return 4
	case errors.As(err, &ce):
		fmt.Fprintf(a.errOut, "admin: someone else wrote first (%v); nothing was written. Run again to see the change on top of theirs.\n", ce)
		return 3
	case errors.Is(err, config.ErrUnknownOutcome):
		fmt.Fprintf(a.errOut, "admin: etcd did not answer the commit in time: it was applied at most once. "+
			"Check the history below before you try again. (%v)\n", err)
		return 5
	case errors.Is(err, config.ErrNotFound):
		fmt.Fprintln(a.errOut, "admin:", err)
		return 1
	default:
		fmt.Fprintln(a.errOut, "admin:", err)
		return 1
	}
}

// history lists the newest n releases.
func (a *admin) history(ctx context.Context, n int) error {
	rels, err := a.w.History(ctx, n)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tTIME\tAUTHOR\tMESSAGE\tCHANGES")
	for _, r := range rels {
		version := fmt.Sprint(r.Version)
		if r.Unrecorded {
			version = "-"
		}
		var keys []string
		for _, c := range r.Changes {
			keys = append(keys, c.Key)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%q\t%s\n", version, r.Time.Format(time.DateTime), r.Author, r.Message, strings.Join(keys, " "))
	}
	return tw.Flush()
}

// printChanges prints one line per changed key; secret values are masked
// by the writer.
func printChanges(out io.Writer, changes []config.KeyChange) {
	for _, c := range changes {
		switch c.Kind {
		case config.Added:
			fmt.Fprintf(out, "  + %s: %s\n", c.Key, c.New)
		case config.Deleted:
			fmt.Fprintf(out, "  - %s: %s\n", c.Key, c.Old)
		default:
			fmt.Fprintf(out, "  ~ %s: %s -> %s\n", c.Key, c.Old, c.New)
		}
	}
}

// connect returns a client of endpoints, or of an embedded etcd seeded
// with a small configuration when endpoints is empty; done releases it.
func connect(ctx context.Context, endpoints, prefix string) (*clientv3.Client, func(), error) {
	if endpoints != "" {
		cli, err := etcdprov.NewClient(etcdprov.ClientConfig{Endpoints: strings.Split(endpoints, ",")})
		if err != nil {
			return nil, nil, err
		}
		return cli, func() { cli.Close() }, nil
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	etcd, err := etcdtest.Start(sctx, 1)
	if err != nil {
		return nil, nil, err
	}
	cli, err := etcdprov.NewClient(etcdprov.ClientConfig{Endpoints: etcd.Endpoints()})
	if err != nil {
		etcd.Close()
		return nil, nil, err
	}
	// What the service's deploy put there: overrides only (db.host comes
	// from the service's file).
	seed := config.Content{"name": "payments", "port": "8080", "db/pool": "10", "db/timeout": "5s"}
	if _, err := config.NewRawWriter(cli, prefix).Replace(sctx, seed, config.Author("deploy"), config.Message("initial")); err != nil {
		cli.Close()
		etcd.Close()
		return nil, nil, err
	}
	return cli, func() { cli.Close(); etcd.Close() }, nil
}
