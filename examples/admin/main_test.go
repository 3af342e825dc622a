package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

const testPrefix = "/admin-test/app"

// setup starts etcd, seeds the service's overrides and returns the
// endpoints flag.
func setup(t *testing.T) (*etcdtest.Cluster, []string) {
	t.Helper()
	c := etcdtest.New(t)
	seed := config.Content{"name": "payments", "port": "8080", "db/pool": "10"}
	if _, err := config.NewRawWriter(c.Client(t), testPrefix).Replace(context.Background(), seed, config.Author("deploy")); err != nil {
		t.Fatal(err)
	}
	return c, []string{"-endpoints", strings.Join(c.Endpoints(), ","), "-prefix", testPrefix}
}

func runAdmin(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, stdin, &out, &errOut)
	return code, out.String(), errOut.String()
}

func value(t *testing.T, c *etcdtest.Cluster, key string) string {
	t.Helper()
	resp, err := c.Client(t).Get(context.Background(), testPrefix+"/data/"+key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// A change is shown, confirmed, committed and listed in the history.
func TestChange(t *testing.T) {
	c, flags := setup(t)
	code, out, errOut := runAdmin(t, strings.NewReader("y\n"), append(flags, "-set", "db.pool=20", "-m", "more connections", "-author", "alice")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"~ db/pool: 10 -> 20", "commit version 2? [y/N]", "committed version 2", `alice   "more connections"  db/pool`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := value(t, c, "db/pool"); got != "20" {
		t.Fatalf("db/pool = %q", got)
	}
}

// Declining writes nothing.
func TestDecline(t *testing.T) {
	c, flags := setup(t)
	code, out, _ := runAdmin(t, strings.NewReader("n\n"), append(flags, "-set", "db.pool=20")...)
	if code != 0 || !strings.Contains(out, "cancelled") || value(t, c, "db/pool") != "10" {
		t.Fatalf("exit %d, pool %s:\n%s", code, value(t, c, "db/pool"), out)
	}
}

// An invalid value is refused with the field named; nothing is written.
func TestInvalid(t *testing.T) {
	c, flags := setup(t)
	code, _, errOut := runAdmin(t, nil, append(flags, "-set", "port=0", "-yes")...)
	if code != 4 || !strings.Contains(errOut, "port (etcd key "+testPrefix+"/data/port): failed") || !strings.Contains(errOut, "nothing was written") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := value(t, c, "port"); got != "8080" {
		t.Fatalf("port = %q", got)
	}
}

// A write that lands while the operator reads the diff makes the commit a
// conflict: exit 3, the other write stays.
func TestConflict(t *testing.T) {
	c, flags := setup(t)
	other := readerFunc(func() {
		w := config.NewRawWriter(c.Client(t), testPrefix)
		if _, err := w.Set(context.Background(), "db.pool", "30", config.Author("bob")); err != nil {
			t.Error(err)
		}
	})
	code, _, errOut := runAdmin(t, other, append(flags, "-set", "db.pool=20")...)
	if code != 3 || !strings.Contains(errOut, "someone else wrote first") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := value(t, c, "db/pool"); got != "30" {
		t.Fatalf("db/pool = %q, want bob's 30", got)
	}
}

// Rollback restores an old release as a new one.
func TestRollback(t *testing.T) {
	c, flags := setup(t)
	if code, _, errOut := runAdmin(t, nil, append(flags, "-set", "db.pool=20", "-yes")...); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut := runAdmin(t, nil, append(flags, "-rollback", "1", "-yes")...)
	if code != 0 || !strings.Contains(out, "~ db/pool: 20 -> 10") || !strings.Contains(out, "committed version 3") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if got := value(t, c, "db/pool"); got != "10" {
		t.Fatalf("db/pool = %q", got)
	}
}

// A commit whose answer was lost is reported as such, with its own code.
func TestUnknownOutcomeReport(t *testing.T) {
	var errOut bytes.Buffer
	a := &admin{errOut: &errOut}
	if code := a.report(fmt.Errorf("write x: %w", config.ErrUnknownOutcome)); code != 5 || !strings.Contains(errOut.String(), "at most once") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

// The program runs on its own embedded etcd when no endpoints are given.
func TestEmbedded(t *testing.T) {
	code, out, errOut := runAdmin(t, nil, "-history", "3")
	if code != 0 || !strings.Contains(out, "version 1 (revision") || !strings.Contains(out, `deploy  "initial"`) {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
}

// readerFunc answers "y" after running fn, as an operator who takes long
// enough for someone else to write.
type readerFunc func()

func (f readerFunc) Read(p []byte) (int, error) {
	f()
	return copy(p, "y\n"), io.EOF
}
