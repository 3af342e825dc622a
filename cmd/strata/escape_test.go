package main

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

// syncBuffer is a bytes.Buffer that a running command writes to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitOutput waits (up to 20 s) until buf holds want.
func waitOutput(t *testing.T, what string, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold %q after 20s; it holds:\n%s", what, want, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startWatch runs strata watch in-process until the returned stop is
// called; stop returns its exit code.
func startWatch(t *testing.T, args ...string) (stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append(args, "watch"), strings.NewReader(""), stdout, stderr) }()
	t.Cleanup(cancel)
	waitOutput(t, "watch's stderr", stderr, "strata: watching ")
	return stdout, stderr, func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(20 * time.Second):
			t.Fatal("watch did not end within 20s of its cancellation")
			return -1
		}
	}
}

// TestControlCharsEscaped: terminal control characters in authors,
// messages and key paths are escaped in history, watch and diffs.
func TestControlCharsEscaped(t *testing.T) {
	t.Parallel()
	c := etcdtest.New(t)
	const prefix = "/ctl"
	flags := []string{"--endpoints", strings.Join(c.Endpoints(), ","), "--prefix", prefix}
	watchOut, _, stopWatch := startWatch(t, flags...)

	const author, message, key = "eve\x1b[31m", "msg\a\rgone", "k\x1b[2J"
	doc := writeFile(t, "doc.yaml", `"k\e[2J": 1`+"\nname: x\n")
	code, pushOut, errOut := runCLI(t, "", append(flags, "push", "-f", doc, "--author", author, "-m", message)...)
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, errOut)
	}
	doc2 := writeFile(t, "doc2.yaml", "name: y\n")
	code, diffOut, errOut := runCLI(t, "", append(flags, "diff", "-f", doc2)...)
	if code != 0 {
		t.Fatalf("diff: exit %d: %s", code, errOut)
	}
	cli := c.Client(t)
	if _, err := cli.Put(context.Background(), prefix+"/data/z\x1b]0;title\a", "1"); err != nil {
		t.Fatal(err)
	}
	code, histOut, errOut := runCLI(t, "", append(flags, "history")...)
	if code != 0 {
		t.Fatalf("history: exit %d: %s", code, errOut)
	}
	waitOutput(t, "watch's stdout", watchOut, "revision 3 ")
	if code := stopWatch(); code != 0 {
		t.Errorf("watch: exit %d", code)
	}

	for _, o := range []struct{ name, out string }{
		{"push", pushOut}, {"diff", diffOut}, {"history", histOut}, {"watch", watchOut.String()},
	} {
		t.Logf("%s:\n%s", o.name, o.out)
		if i := strings.IndexFunc(o.out, func(r rune) bool { return r < ' ' && r != '\n' || r == 0x7f }); i >= 0 {
			t.Errorf("%s prints the control character %q raw", o.name, o.out[i])
		}
	}
	q := strconv.Quote(key)
	for _, o := range []struct{ name, out, want string }{
		{"push", pushOut, "+ " + q + ": 1"},
		{"diff", diffOut, "- " + q + ": 1"},
		{"watch", watchOut.String(), "+ " + q + ": 1"},
		{"history author", histOut, strconv.Quote(author)},
		{"history message", histOut, strconv.Quote(message)},
		{"history key", histOut, "+" + q},
		{"history unrecorded key", histOut, strconv.Quote("z\x1b]0;title\a")},
	} {
		if !strings.Contains(o.out, o.want) {
			t.Errorf("%s: want %q escaped as %s", o.name, o.out, o.want)
		}
	}
}

// TestPrintErrorEscapes: an error is one line on stderr, whatever control
// characters it holds.
func TestPrintErrorEscapes(t *testing.T) {
	var b bytes.Buffer
	printError(&b, errors.New("key a\x1b[2Jb\r\nvalue \a\u0085x"))
	if want := `strata: key a\x1b[2Jb; value \x07\u0085x` + "\n"; b.String() != want {
		t.Errorf("printError wrote %q, want %q", b.String(), want)
	}
}

// TestWatchErrorEscaped: a key that breaks the tree (a document that does
// not parse) is named on watch's stderr with its control characters
// escaped, as printError does.
func TestWatchErrorEscaped(t *testing.T) {
	t.Parallel()
	c := etcdtest.New(t)
	const prefix = "/ctlwatch"
	flags := []string{"--endpoints", strings.Join(c.Endpoints(), ","), "--prefix", prefix}
	_, watchErr, stopWatch := startWatch(t, flags...)
	cli := c.Client(t)
	if _, err := cli.Put(context.Background(), prefix+"/data/bad\x1b[2J.yaml", "a: [unclosed"); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, "watch's stderr", watchErr, "strata: revision ")
	if code := stopWatch(); code != 0 {
		t.Errorf("watch: exit %d", code)
	}
	out := watchErr.String()
	t.Logf("stderr:\n%s", out)
	if i := strings.IndexFunc(out, func(r rune) bool { return r < ' ' && r != '\n' || r == 0x7f }); i >= 0 {
		t.Errorf("watch prints the control character %q raw on stderr", out[i])
	}
	if !strings.Contains(out, `bad\x1b[2J.yaml`) {
		t.Errorf("stderr does not name the key escaped")
	}
}

// TestShowValueInvalidUTF8: a value that is not valid UTF-8 is quoted in a
// diff, as a name or a path is (showText), never printed raw.
func TestShowValueInvalidUTF8(t *testing.T) {
	for _, s := range []string{"a\xffb", "\xc3", "ok\x80"} {
		if got, want := showValue(s), strconv.Quote(s); got != want {
			t.Errorf("showValue(%q) = %q, want %q", s, got, want)
		}
		if got, want := showText(s), strconv.Quote(s); got != want {
			t.Errorf("showText(%q) = %q, want %q", s, got, want)
		}
	}
	var b bytes.Buffer
	printDiff(&b, []diffLine{{kind: config.Changed, path: "p\xff", old: "a\xff", new: "b"}}, false)
	if want := `~ "p\xff": "a\xff" → b` + "\n"; b.String() != want {
		t.Errorf("printDiff wrote %q, want %q", b.String(), want)
	}
}
