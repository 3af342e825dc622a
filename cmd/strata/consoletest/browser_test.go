package consoletest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/strataconf/strata/cmd/strata/internal/console"
	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

const (
	prefix    = "/strata/shop/prod"
	token     = "browser-test-token-0123456789"
	secretVal = "s3cr3t-db-PASSWORD"
)

const appSchema = `{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "db": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "pool": {"type": "integer", "minimum": 1, "maximum": 100, "description": "connections in the pool"},
        "host": {"type": "string", "description": "database host"},
        "password": {"type": "string", "x-secret": true, "description": "database password"}
      }
    },
    "feature": {
      "type": "object",
      "properties": {
        "checkout_v2": {"type": "boolean", "description": "serve the new checkout"}
      }
    },
    "timeout": {"type": "string", "description": "request timeout"}
  }
}`

type appConfig struct {
	DB struct {
		Pool     int    `koanf:"pool"`
		Host     string `koanf:"host"`
		Password string `koanf:"password"`
	} `koanf:"db"`
	Feature struct {
		CheckoutV2 bool `koanf:"checkout_v2"`
	} `koanf:"feature"`
	Timeout string `koanf:"timeout"`
}

// browserPath finds a Chromium or Chrome binary.
func browserPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func TestConsoleInBrowser(t *testing.T) {
	exe := browserPath()
	if exe == "" {
		t.Skip("no chromium, chromium-browser or google-chrome on PATH")
	}
	c := etcdtest.New(t)
	cli := c.Client(t)
	ctx := context.Background()
	w, err := config.NewRawWriter(cli, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.PublishSchema(ctx, []byte(appSchema), config.Author("deploy-bot")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Modify(ctx, func(c config.Content) error {
		c["db/pool"], c["db/host"], c["db/password"] = "10", "db.shop.internal", secretVal
		c["feature/checkout_v2"], c["timeout"] = "false", "15s"
		return nil
	}, config.Author("deploy-bot"), config.Message("initial configuration")); err != nil {
		t.Fatal(err)
	}

	// Two running instances.
	for i, zone := range []string{"eu-1", "us-1"} {
		cfg, err := config.Load[appConfig](ctx, config.WithEtcd(cli, prefix),
			config.WithInstance(fmt.Sprintf("shop-%d", i+1), map[string]string{"zone": zone}, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cfg.Close() })
	}

	srv, err := console.New(console.Options{Client: cli, Prefixes: []string{prefix}, Tokens: []string{token}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close() })

	// The screenshots go to a temporary directory, or to
	// $STRATA_SCREENSHOTS (README's: STRATA_SCREENSHOTS=$PWD/../../../docs),
	// so that a test run leaves the checkout as it was.
	docs := os.Getenv("STRATA_SCREENSHOTS")
	if docs == "" {
		docs = t.TempDir()
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	a, cancelA := chromedp.NewContext(allocCtx)
	defer cancelA()
	a, cancelT := context.WithTimeout(a, 3*time.Minute)
	defer cancelT()

	shot := func(bctx context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(docs, "console-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(bctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		for i, act := range actions {
			if err := chromedp.Do(sctx, act); err != nil {
				pctx, pcancel := context.WithTimeout(bctx, 5*time.Second)
				body, _ := chromedp.Run(pctx, chromedp.Text(chromedp.CSS("body")))
				pcancel()
				t.Fatalf("%s: step %d of %d: %v\npage:\n%s", what, i+1, len(actions), err, body)
			}
		}
	}
	etcdValue := func(key string) string {
		t.Helper()
		resp, err := cli.Get(ctx, prefix+"/data/"+key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}
	text := func(bctx context.Context, sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	login := func(bctx context.Context) {
		t.Helper()
		run(bctx, "log in",
			chromedp.Navigate(ts.URL+"/login"),
			chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), token),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.ID("tree")))
	}

	// Start the browser on its own context (the first run allocates it;
	// the per-step timeouts of run must not own it).
	if err := chromedp.Do(a, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}

	// Log in; the configuration.
	run(a, "login page", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	shot(a, "login")
	login(a)
	tree := text(a, "#tree")
	if !strings.Contains(tree, "db.pool") || !strings.Contains(tree, "******") || strings.Contains(tree, secretVal) {
		t.Fatalf("configuration:\n%s", tree)
	}
	shot(a, "configuration")

	// db.pool 10 → 20: the diff, then save.
	run(a, "edit db.pool",
		chromedp.Click(chromedp.CSS(`a[id="edit-db.pool"]`)),
		chromedp.WaitVisible(chromedp.ID("value")),
		chromedp.SetValue(chromedp.ID("value"), "20"),
		chromedp.SendKeys(chromedp.ID("message"), "more connections for the sale"),
		chromedp.Click(chromedp.ID("preview")),
		chromedp.WaitVisible(chromedp.ID("diff")))
	if d := text(a, "#diff"); !strings.Contains(d, "10") || !strings.Contains(d, "20") || !strings.Contains(d, "db.pool") {
		t.Fatalf("diff: %q", d)
	}
	shot(a, "diff")
	run(a, "save", chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("flash")))
	if v := etcdValue("db/pool"); v != "20" {
		t.Fatalf("etcd holds db.pool %q after save", v)
	}
	run(a, "history", chromedp.Click(chromedp.CSS(`nav.pages a[href^="/history"]`)), chromedp.WaitVisible(chromedp.ID("releases")))
	hist := text(a, "#releases")
	if !strings.Contains(hist, "token:") || !strings.Contains(hist, "more connections for the sale") {
		t.Fatalf("history:\n%s", hist)
	}

	// 500 is over the schema's maximum: the error is next to the field.
	run(a, "enter 500",
		chromedp.Navigate(ts.URL+"/edit?path=db.pool"),
		chromedp.WaitVisible(chromedp.ID("value")),
		chromedp.SetValue(chromedp.ID("value"), "500"),
		chromedp.Click(chromedp.ID("preview")),
		chromedp.WaitVisible(chromedp.ID("value-error")))
	if e := text(a, "#value-error"); !strings.Contains(e, "maximum") {
		t.Fatalf("field error: %q", e)
	}
	shot(a, "invalid")
	if v := etcdValue("db/pool"); v != "20" {
		t.Fatalf("etcd holds db.pool %q after an invalid value", v)
	}

	// A write from a second browser meanwhile: the first one's save is a
	// conflict.
	run(a, "edit for the conflict",
		chromedp.Navigate(ts.URL+"/edit?path=db.pool"),
		chromedp.WaitVisible(chromedp.ID("value")),
		chromedp.SetValue(chromedp.ID("value"), "30"),
		chromedp.Click(chromedp.ID("preview")),
		chromedp.WaitVisible(chromedp.ID("save")))
	b, cancelB := chromedp.NewContext(a, chromedp.WithNewBrowserContext())
	defer cancelB()
	if err := chromedp.Do(b, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	login(b)
	run(b, "second browser writes",
		chromedp.Navigate(ts.URL+"/edit?path=db.pool"),
		chromedp.WaitVisible(chromedp.ID("value")),
		chromedp.SetValue(chromedp.ID("value"), "40"),
		chromedp.SendKeys(chromedp.ID("message"), "second operator"),
		chromedp.Click(chromedp.ID("preview")),
		chromedp.WaitVisible(chromedp.ID("save")),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	if v := etcdValue("db/pool"); v != "40" {
		t.Fatalf("second browser: etcd holds %q", v)
	}
	run(a, "stale banner", chromedp.WaitVisible(chromedp.ID("stale")))
	run(a, "save from the stale page", chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("conflict")))
	if m := text(a, "#conflict"); !strings.Contains(m, "Conflict") {
		t.Fatalf("conflict message: %q", m)
	}
	if d := text(a, "#diff"); !strings.Contains(d, "40") || !strings.Contains(d, "30") {
		t.Fatalf("fresh diff: %q", d)
	}
	shot(a, "conflict")
	if v := etcdValue("db/pool"); v != "40" {
		t.Fatalf("the stale save overwrote: %q", v)
	}

	// Roll back to the first configuration (release 2) from the history.
	run(a, "roll back",
		chromedp.Navigate(ts.URL+"/history"),
		chromedp.WaitVisible(chromedp.ID("releases")))
	shot(a, "history")
	run(a, "confirm",
		chromedp.Click(chromedp.ID("rollback-2")),
		chromedp.WaitVisible(chromedp.ID("confirm-rollback")))
	shot(a, "rollback")
	run(a, "rolled back",
		chromedp.SendKeys(chromedp.ID("message"), "back to the initial pool"),
		chromedp.Click(chromedp.ID("confirm-rollback")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	if v := etcdValue("db/pool"); v != "10" {
		t.Fatalf("after the rollback etcd holds %q", v)
	}

	// The instances: two Configs, with their versions.
	var summary string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		run(a, "instances", chromedp.Navigate(ts.URL+"/instances"), chromedp.WaitVisible(chromedp.ID("summary")))
		if summary = text(a, "#summary"); strings.Contains(summary, "2 of 2") || time.Now().After(deadline) {
			break
		}
	}
	ins := text(a, "#instances")
	if !strings.Contains(summary, "2 of 2") || !strings.Contains(ins, "shop-1") || !strings.Contains(ins, "shop-2") {
		t.Fatalf("instances: %q\n%s", summary, ins)
	}
	_, version, _, err := w.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ins, fmt.Sprint(version)) {
		t.Fatalf("instances do not show version %d:\n%s", version, ins)
	}
	shot(a, "instances")

	// The other pages, and the configuration at phone width.
	run(a, "push page", chromedp.Navigate(ts.URL+"/push"), chromedp.WaitVisible(chromedp.ID("push-form")))
	shot(a, "push")
	run(a, "rollout page", chromedp.Navigate(ts.URL+"/rollout"), chromedp.WaitVisible(chromedp.ID("start-form")))
	shot(a, "rollout")
	run(a, "phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(ts.URL+"/config"), chromedp.WaitVisible(chromedp.ID("tree")))
	shot(a, "phone")

	// No secret reached the browser.
	html, err := chromedp.Run(a, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, secretVal) {
		t.Fatal("the secret value reached the browser")
	}
}
