package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

const testPrefix = "/admin-test/app"

// env is one embedded etcd with version 1 of the configuration in it.
type env struct {
	t     *testing.T
	c     *etcdtest.Cluster
	cli   *clientv3.Client
	flags []string // -endpoints and -prefix
}

func setup(t *testing.T) *env {
	t.Helper()
	c := etcdtest.New(t)
	cli := c.Client(t)
	w, err := newWriter(cli, testPrefix)
	if err != nil {
		t.Fatal(err)
	}
	seed := &App{Name: "payments", Port: 8080, DB: DB{Host: "db.internal", Pool: 10}}
	if _, err := w.Replace(context.Background(), seed, config.Author("deploy"), config.Message("initial")); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, c: c, cli: cli, flags: []string{"--endpoints", strings.Join(c.Endpoints(), ","), "-prefix", testPrefix}}
}

// run runs the program with e's flags and args.
func (e *env) run(stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	code = run(context.Background(), append(append([]string{}, e.flags...), args...), stdin, &out, &errOut)
	e.t.Logf("admin %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// get returns the value of key under the prefix ("" when absent).
func (e *env) get(key string) string {
	e.t.Helper()
	resp, err := e.cli.Get(context.Background(), testPrefix+"/"+key)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// want fails the test unless etcd holds these values.
func (e *env) want(kvs ...string) {
	e.t.Helper()
	for i := 0; i < len(kvs); i += 2 {
		if got := e.get(kvs[i]); got != kvs[i+1] {
			e.t.Errorf("%s = %q, want %q", kvs[i], got, kvs[i+1])
		}
	}
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

// A change is shown as a diff, confirmed, committed with the author and
// message, and listed in the history.
func TestSet(t *testing.T) {
	e := setup(t)
	code, out, _ := e.run(strings.NewReader("y\n"), "-set", "db.pool=20", "-set", "port=9090", "-m", "more connections", "-author", "alice")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	contains(t, "output", out,
		"is at version 1",
		"version 2 would change 2 key(s):",
		"changed  db/pool  10 -> 20",
		"changed  port     8080 -> 9090",
		"write version 2 as alice? [y/N]",
		"wrote version 2 at etcd revision")
	if !regexp.MustCompile(`(?m)^2 +\d+ +\S+ \S+ +alice +more connections +db/pool port$`).MatchString(out) {
		t.Error("the history lacks release 2 by alice")
	}
	e.want("data/db/pool", "20", "data/port", "9090", "data/db/host", "db.internal", "meta/version", "2")
}

// Declining the diff writes nothing.
func TestDecline(t *testing.T) {
	e := setup(t)
	code, out, _ := e.run(strings.NewReader("n\n"), "-set", "db.pool=20")
	if code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	contains(t, "output", out, "changed  db/pool  10 -> 20", "declined: nothing written")
	e.want("data/db/pool", "10", "meta/version", "1")
}

// Invalid values are refused with every failing field named, and nothing
// is written; values that are not even of the field's type, and paths
// that name no field, are refused before etcd is asked.
func TestInvalid(t *testing.T) {
	e := setup(t)
	code, _, errOut := e.run(nil, "-set", "port=70000", "-set", "db.host=", "-yes")
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d", code, exitInvalid)
	}
	contains(t, "stderr", errOut,
		"rejected, nothing written",
		"  port (etcd key "+testPrefix+"/data/port): failed max=65535 (value 70000)",
		"  db.host (etcd key "+testPrefix+"/data/db/host): failed required")
	e.want("data/port", "8080", "data/db/host", "db.internal", "meta/version", "1")

	if code, _, errOut := e.run(nil, "-set", "port=abc", "-yes"); code != exitInvalid || !strings.Contains(errOut, `port: cannot parse "abc" as int`) {
		t.Errorf("-set port=abc: exit %d, %q", code, errOut)
	}
	if code, _, errOut := e.run(nil, "-set", "db.hots=x", "-yes"); code != exitUsage || !strings.Contains(errOut, "no such field: db.hots") {
		t.Errorf("-set db.hots=x: exit %d, %q", code, errOut)
	}
	e.want("meta/version", "1")
}

// script is an operator at the terminal: before each answer it runs the
// next action (someone else writing while the diff is on screen).
type script struct {
	answers []string
	before  []func()
	n       int
}

func (s *script) Read(p []byte) (int, error) {
	if s.n >= len(s.answers) {
		return 0, io.EOF
	}
	if s.n < len(s.before) && s.before[s.n] != nil {
		s.before[s.n]()
	}
	s.n++
	return copy(p, s.answers[s.n-1]+"\n"), nil
}

// bob writes db.pool=30 as another operator.
func (e *env) bob() {
	w, err := newWriter(e.cli, testPrefix)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := w.Set(context.Background(), "db.pool", "30", config.Author("bob"), config.Message("bob's change")); err != nil {
		e.t.Error(err)
	}
}

// Someone writes while the operator reads the diff: the commit is a
// conflict, what changed is shown, and the operator may decline (exit 3,
// the other write stays) ...
func TestConflictDeclined(t *testing.T) {
	e := setup(t)
	code, out, _ := e.run(&script{answers: []string{"y", "n"}, before: []func(){e.bob}}, "-set", "db.pool=20")
	if code != exitConflict {
		t.Fatalf("exit %d, want %d", code, exitConflict)
	}
	contains(t, "output", out,
		"conflict: version conflict: expected version 1, current version is 2",
		"someone else wrote first",
		`version 2 by bob ("bob's change"):`,
		"changed  db/pool  10 -> 30",
		"is at version 2",
		"changed  db/pool  30 -> 20",
		"write version 3 as")
	e.want("data/db/pool", "30", "meta/version", "2")
}

// ... or apply the change on top of it.
func TestConflictRetried(t *testing.T) {
	e := setup(t)
	code, out, _ := e.run(&script{answers: []string{"y", "y"}, before: []func(){e.bob}}, "-set", "db.pool=20", "-author", "alice")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	contains(t, "output", out, "someone else wrote first", "changed  db/pool  30 -> 20", "wrote version 3")
	e.want("data/db/pool", "20", "meta/version", "3")
}

// interceptClient makes run's etcd client go through fn (with the
// request, and the call to make it) for the rest of the test.
func interceptClient(t *testing.T, e *env, fn func(req any, call func() error) error) {
	old := newClient
	t.Cleanup(func() { newClient = old })
	newClient = func([]string) (*clientv3.Client, error) {
		cfg := e.c.ClientConfig()
		cfg.DialOptions = append(cfg.DialOptions, grpc.WithChainUnaryInterceptor(
			func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				return fn(req, func() error { return invoker(ctx, method, req, reply, cc, opts...) })
			}))
		return clientv3.New(cfg)
	}
}

// isCommit reports whether req is a writer's commit (a guarded Txn).
func isCommit(req any) bool {
	txn, ok := req.(*pb.TxnRequest)
	return ok && len(txn.Compare) > 0
}

// With -yes a conflict is not retried: exit 3, nothing of ours written.
func TestConflictYes(t *testing.T) {
	e := setup(t)
	var once sync.Once
	interceptClient(t, e, func(req any, call func() error) error {
		if isCommit(req) {
			once.Do(e.bob)
		}
		return call()
	})
	code, out, _ := e.run(nil, "-set", "db.pool=20", "-yes")
	if code != exitConflict {
		t.Fatalf("exit %d, want %d", code, exitConflict)
	}
	contains(t, "output", out, "someone else wrote first", "version 2 by bob", "not retrying with -yes")
	e.want("data/db/pool", "30", "meta/version", "2")
}

// lose makes the first commit's answer get lost: with sent, the commit
// reaches etcd, else not; then etcd is unreachable for a second.
func lose(t *testing.T, e *env, sent bool) {
	var until atomic.Int64 // unix nanos; 0: not yet lost
	interceptClient(t, e, func(req any, call func() error) error {
		if u := until.Load(); u != 0 && time.Now().UnixNano() < u {
			return status.Error(codes.Unavailable, "test: etcd unreachable")
		}
		if !isCommit(req) || !until.CompareAndSwap(0, time.Now().Add(time.Second).UnixNano()) {
			return call()
		}
		if sent {
			if err := call(); err != nil {
				return err
			}
		}
		return status.Error(codes.Unavailable, "test: the answer to the commit was lost")
	})
}

// A commit whose answer was lost: the program says it was committed at
// most once and finds it in the history.
func TestUnknownOutcomeCommitted(t *testing.T) {
	e := setup(t)
	lose(t, e, true)
	code, out, _ := e.run(nil, "-set", "db.pool=20", "-yes", "-timeout", "300ms")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	contains(t, "output", out, "the answer to the commit was lost", "at most once", "it was committed: version 2")
	e.want("data/db/pool", "20", "meta/version", "2")
}

// ... or does not find it, and says how to resend it safely, which then
// writes it once.
func TestUnknownOutcomeNotCommitted(t *testing.T) {
	e := setup(t)
	lose(t, e, false)
	code, out, _ := e.run(nil, "-set", "db.pool=20", "-yes", "-timeout", "300ms", "-write-id", "change-42", "-history", "3")
	if code != exitUnknown {
		t.Fatalf("exit %d, want %d", code, exitUnknown)
	}
	// Only the newest releases were searched: it is not said not to be
	// committed at all.
	contains(t, "output", out, "at most once", "it was not found in the newest 3 releases: it may be older, or still landing", "-write-id change-42")
	if strings.Contains(out, "it was not committed") {
		t.Errorf("output claims the write was not committed after searching 3 releases:\n%s", out)
	}
	e.want("data/db/pool", "10", "meta/version", "1")

	if code, _, _ := e.run(nil, "-set", "db.pool=20", "-yes", "-write-id", "change-42"); code != exitOK {
		t.Fatalf("resend: exit %d", code)
	}
	e.want("data/db/pool", "20", "meta/version", "2")
}

// Rollback restores an old release as a new one, and the history lists
// every release, newest first.
func TestRollbackAndHistory(t *testing.T) {
	e := setup(t)
	if code, _, _ := e.run(nil, "-set", "db.pool=20", "-yes", "-m", "more", "-author", "alice"); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	code, out, _ := e.run(nil, "-rollback", "1", "-yes", "-m", "undo", "-author", "carol")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	contains(t, "output", out, "changed  db/pool  20 -> 10", "wrote version 3")
	e.want("data/db/pool", "10", "meta/version", "3")

	code, out, _ = e.run(nil, "-history", "2")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	table := regexp.MustCompile(`(?s)VERSION +REVISION +TIME +AUTHOR +MESSAGE +CHANGES\n` +
		`3 +\d+ +\S+ \S+ +carol +undo \(rollback to 1\) +db/pool\n` +
		`2 +\d+ +\S+ \S+ +alice +more +db/pool\n$`)
	if !table.MatchString(out) {
		t.Errorf("the history table is not as expected:\n%s", out)
	}

	if code, _, errOut := e.run(nil, "-rollback", "9", "-yes"); code != exitError || !strings.Contains(errOut, "not found") {
		t.Errorf("-rollback 9: exit %d, %q", code, errOut)
	}
}

// Without --endpoints the program starts and seeds its own etcd.
func TestEmbedded(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-set", "db.pool=20", "-yes"}, strings.NewReader(""), &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	contains(t, "output", out.String(), "starting an embedded etcd", "changed  db/pool  10 -> 20", "wrote version 2", "admin-example  initial configuration")
}

// Usage errors exit 2.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-set", "db.pool"}, {"-set", "a=1", "-rollback", "1"}, {"extra"}, {"-nope"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &out, &errOut); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
