package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

// TestMain makes the test binary double as the programs the scripts run:
// strata itself and small helpers that talk to etcd around the writer.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"strata":     func() { os.Exit(mainExit()) },
		"etcdput":    func() { os.Exit(helperMain(etcdput)) },
		"etcdget":    func() { os.Exit(helperMain(etcdget)) },
		"rev":        func() { os.Exit(helperMain(revision)) },
		"exitcode":   func() { os.Exit(exitcodeMain()) },
		"transcript": func() { os.Exit(transcriptMain()) },
		"instance":   func() { os.Exit(instanceMain()) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		Setup:         setupEtcd,
		UpdateScripts: os.Getenv("STRATA_UPDATE_SCRIPTS") != "",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfor":  cmdWaitfor,
			"cmpnorm":  cmdCmpnorm,
			"globgrep": cmdGlobgrep,
			"waitrun":  cmdWaitrun,
			"filemode": cmdFilemode,
			"dropkey":  cmdDropkey,
		},
	})
}

// setupEtcd starts one embedded etcd member per script and points strata
// at it through STRATA_ENDPOINTS and STRATA_PREFIX.
func setupEtcd(env *testscript.Env) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := etcdtest.Start(ctx, 1)
	if err != nil {
		return err
	}
	env.Defer(func() { c.Close() })
	env.Setenv("STRATA_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	env.Setenv("STRATA_PREFIX", "/strata/test")
	env.Setenv("NO_COLOR", "1")
	// Under -race every process sleeps 1 s at exit by default; the scripts
	// run many.
	env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	golden, err := filepath.Abs("testdata")
	if err != nil {
		return err
	}
	env.Setenv("TESTDATA", golden)
	return nil
}

// helperMain runs a helper with a client on STRATA_ENDPOINTS.
func helperMain(fn func(ctx context.Context, cli *clientv3.Client, args []string) error) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(os.Getenv("STRATA_ENDPOINTS"), ","),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cli.Close()
	if err := fn(ctx, cli, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
		return 1
	}
	return 0
}

// etcdput KEY VALUE writes a key the way etcdctl put does (VALUE @FILE:
// the file's content); etcdput -d KEY deletes it. A KEY not starting with / is taken relative to
// $STRATA_PREFIX/data/.
func etcdput(ctx context.Context, cli *clientv3.Client, args []string) error {
	switch {
	case len(args) == 2 && args[0] == "-d":
		_, err := cli.Delete(ctx, fullKey(args[1]))
		return err
	case len(args) == 2:
		v := args[1]
		if file, ok := strings.CutPrefix(v, "@"); ok {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			v = string(b)
		}
		_, err := cli.Put(ctx, fullKey(args[0]), v)
		return err
	}
	return errors.New("usage: etcdput KEY VALUE|@FILE | etcdput -d KEY")
}

// etcdget KEY prints the value of a key; it fails when there is none.
func etcdget(ctx context.Context, cli *clientv3.Client, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: etcdget KEY")
	}
	resp, err := cli.Get(ctx, fullKey(args[0]))
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("%s: no such key", fullKey(args[0]))
	}
	fmt.Printf("%s\n", resp.Kvs[0].Value)
	return nil
}

// revision prints the current etcd revision.
func revision(ctx context.Context, cli *clientv3.Client, args []string) error {
	resp, err := cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	fmt.Println(resp.Header.Revision)
	return nil
}

func fullKey(k string) string {
	if strings.HasPrefix(k, "/") {
		return k
	}
	return os.Getenv("STRATA_PREFIX") + "/data/" + k
}

// exitcode N PROGRAM ARGS... runs PROGRAM and succeeds only if it exits
// with code N, passing its output through.
func exitcodeMain() int {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: exitcode N PROGRAM ARGS...")
		return 1
	}
	want, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "exitcode:", err)
		return 1
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	got := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, "exitcode:", err)
			return 1
		}
		got = ee.ExitCode()
	}
	if got != want {
		fmt.Fprintf(os.Stderr, "exitcode: %s exited with %d, want %d\n", os.Args[2], got, want)
		return 1
	}
	return 0
}

// transcript FILE runs each line of FILE (words split on spaces, single
// quotes group) and prints "$ line", then the line's stdout and stderr,
// then "(exit N)" when N is not 0: the worked session of the README.
func transcriptMain() int {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: transcript FILE")
		return 1
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	first := true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !first {
			fmt.Println()
		}
		first = false
		words := splitWords(line)
		fmt.Printf("$ %s\n", line)
		cmd := exec.Command(words[0], words[1:]...)
		out, err := cmd.CombinedOutput()
		os.Stdout.Write(out)
		if err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Printf("(exit %d)\n", ee.ExitCode())
		}
	}
	return 0
}

// splitWords splits on spaces; single quotes group words.
func splitWords(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			inQuote, have = !inQuote, true
		case r == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// waitfor FILE REGEXP waits (up to 20 s) until FILE matches REGEXP.
func cmdWaitfor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfor FILE REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(ts.MkAbs(args[0]))
		if re.Match(b) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s does not match %q after 20s; it holds:\n%s", args[0], args[1], b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	timeLeft  = regexp.MustCompile(`\b[0-9hmsµ.]+ left\b`)
)

// cmpnorm A B compares two files (or stdout/stderr) after replacing every
// RFC 3339 timestamp, and every duration "left" (of a rollout step's bake),
// by the same placeholder.
func cmpnorm(ts *testscript.TestScript, a, b string) (string, string) {
	norm := func(s string) string {
		return timeLeft.ReplaceAllString(timestamp.ReplaceAllString(s, "YYYY-MM-DDTHH:MM:SSZ"), "D left")
	}
	return norm(ts.ReadFile(a)), norm(ts.ReadFile(b))
}

// cmpnorm [-blank REGEXP] FILE1 FILE2: with -blank, the text REGEXP
// matches (multi-line) is also blanked out in both, for values that vary
// from run to run (a revision that counts other processes' writes).
func cmdCmpnorm(ts *testscript.TestScript, neg bool, args []string) {
	var blank *regexp.Regexp
	if len(args) == 4 && args[0] == "-blank" {
		var err error
		blank, err = regexp.Compile("(?m)" + args[1])
		ts.Check(err)
		args = args[2:]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: cmpnorm [-blank REGEXP] FILE1 FILE2")
	}
	a, b := cmpnorm(ts, args[0], args[1])
	if blank != nil {
		a, b = blank.ReplaceAllString(a, "…"), blank.ReplaceAllString(b, "…")
	}
	if a != b && os.Getenv("STRATA_UPDATE_SCRIPTS") != "" && filepath.IsAbs(args[1]) {
		ts.Check(os.WriteFile(args[1], []byte(ts.ReadFile(args[0])), 0o644))
		ts.Logf("%s updated", args[1])
		return
	}
	if a != b {
		ts.Logf("[diff %s %s]\n--- %s\n%s\n--- %s\n%s", args[0], args[1], args[0], a, args[1], b)
		ts.Fatalf("%s and %s differ (timestamps aside)", args[0], args[1])
	}
}

// globgrep GLOB REGEXP succeeds when a file matches GLOB and its content
// matches REGEXP; ! globgrep GLOB succeeds when no file matches GLOB.
func cmdGlobgrep(ts *testscript.TestScript, neg bool, args []string) {
	if (neg && len(args) != 1) || (!neg && len(args) != 2) {
		ts.Fatalf("usage: globgrep GLOB REGEXP | ! globgrep GLOB")
	}
	files, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if neg {
		if len(files) > 0 {
			ts.Fatalf("files match %s: %v", args[0], files)
		}
		return
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		ts.Check(err)
		if re.Match(b) {
			ts.Logf("%s matches", f)
			return
		}
	}
	ts.Fatalf("no file matching %s holds %q (files: %v)", args[0], args[1], files)
}

// scriptApp is the configuration type of the instance helper.
type scriptApp struct {
	Name string `koanf:"name"`
	Port int    `koanf:"port" validate:"min=1,max=65535"`
	DB   struct {
		Host     string `koanf:"host"`
		Pool     int    `koanf:"pool" validate:"min=0,max=50"`
		Password string `koanf:"password" secret:"true"`
	} `koanf:"db"`
}

// instance ID [LABELS] runs a Config on $STRATA_PREFIX with the instance
// record ID and LABELS ("zone=eu-1,tier=web") until SIGINT or SIGTERM,
// then closes it (which removes the record). It prints "ready" once the
// record is written.
func instanceMain() int {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: instance ID [LABELS]")
		return 1
	}
	labels := map[string]string{}
	if len(os.Args) == 3 {
		for _, kv := range strings.Split(os.Args[2], ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				fmt.Fprintf(os.Stderr, "instance: label %q is not key=value\n", kv)
				return 1
			}
			labels[k] = v
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(os.Getenv("STRATA_ENDPOINTS"), ","),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "instance:", err)
		return 1
	}
	defer cli.Close()
	prefix := os.Getenv("STRATA_PREFIX")
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cfg, err := config.Load[scriptApp](lctx, config.WithEtcd(cli, prefix), config.WithInstance(os.Args[1], labels, 0),
		config.WithUnknownKeys(config.UnknownIgnore))
	if err != nil {
		fmt.Fprintln(os.Stderr, "instance:", err)
		return 1
	}
	defer cfg.Close()
	for {
		list, err := config.Instances(lctx, cli, prefix)
		if err != nil {
			fmt.Fprintln(os.Stderr, "instance:", err)
			return 1
		}
		if slices.ContainsFunc(list, func(in config.Instance) bool { return in.ID == os.Args[1] }) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("ready")
	<-ctx.Done()
	return 0
}

// waitrun REGEXP PROGRAM ARGS... runs PROGRAM again (every 200 ms, up to
// 20 s) until it succeeds with stdout matching REGEXP (multi-line, as the
// stdout command matches); stdout and stderr are then those of that run.
func cmdWaitrun(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: waitrun REGEXP PROGRAM ARGS...")
	}
	re, err := regexp.Compile("(?m)" + args[0])
	ts.Check(err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := ts.Exec(args[1], args[2:]...)
		if err == nil && re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s: stdout does not match %q after 20s (last error: %v)", strings.Join(args[1:], " "), args[0], err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
