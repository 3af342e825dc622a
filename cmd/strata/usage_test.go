package main

import (
	"os"
	"strings"
	"testing"

	"github.com/strataconf/strata/internal/etcdtest"
)

// TestWatchReportsConnection: watch says on stderr when its connection to
// etcd is lost and when it is back, and goes on printing changes.
func TestWatchReportsConnection(t *testing.T) {
	t.Parallel()
	c := etcdtest.New(t)
	flags := []string{"--endpoints", strings.Join(c.Endpoints(), ","), "--prefix", "/w", "--dial-timeout", "1s"}
	out, errOut, stop := startWatch(t, flags...)
	m := c.Members[0]
	m.Stop(t)
	waitOutput(t, "watch's stderr", errOut, "connection to etcd")
	if s := errOut.String(); !strings.Contains(s, "lost") {
		t.Fatalf("stderr does not say the connection was lost:\n%s", s)
	}
	m.Restart(t)
	waitOutput(t, "watch's stderr", errOut, "is back")
	if code, _, e := runCLI(t, "", append(flags, "set", "a", "1")...); code != 0 {
		t.Fatalf("set: exit %d: %s", code, e)
	}
	waitOutput(t, "watch's stdout", out, "+ a: 1")
	if code := stop(); code != 0 {
		t.Errorf("watch: exit %d", code)
	}
	t.Logf("stderr:\n%s", errOut.String())
	if n := strings.Count(errOut.String(), "\n"); n != 3 {
		t.Errorf("want 3 lines on stderr (watching, lost, back), got %d", n)
	}
}

// TestNoColorEmpty: NO_COLOR turns colour off only when it is not empty
// (no-color.org). /dev/null is a character device, as a terminal is.
func TestNoColorEmpty(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	t.Setenv("NO_COLOR", "")
	if !colour(f) {
		t.Error("NO_COLOR= (empty) turned colour off")
	}
	t.Setenv("NO_COLOR", "1")
	if colour(f) {
		t.Error("NO_COLOR=1 left colour on")
	}
}
