package console

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

const (
	prefix     = "/strata/test"
	token      = "tok-0123456789abcdef"
	secretVal  = "s3cr3t-PASSWORD-value"
	unknownVal = "hunter2-UNKNOWN-value"
)

var secrets = []string{secretVal, unknownVal}

const testSchema = `{
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
    }
  }
}`

// seed publishes the schema and writes db.pool=10, db.host, db.password
// (secret), then an unknown key db.pasword around the writer.
func seed(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx := context.Background()
	w, err := config.NewRawWriter(cli, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.PublishSchema(ctx, []byte(testSchema), config.Author("seed")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Modify(ctx, func(c config.Content) error {
		c["db/pool"], c["db/host"], c["db/password"] = "10", "db.local", secretVal
		return nil
	}, config.Author("seed"), config.Message("first")); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, prefix+"/data/db/pasword", unknownVal); err != nil {
		t.Fatal(err)
	}
}

// browser is an HTTP client with a cookie jar that keeps every body it
// read, to check none holds a secret.
type browser struct {
	t      *testing.T
	base   string
	c      *http.Client
	bodies *[]string
}

func newBrowser(t *testing.T, base string, bodies *[]string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, bodies: bodies, c: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

func (b *browser) do(req *http.Request) (int, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	*b.bodies = append(*b.bodies, string(body))
	return resp.StatusCode, string(body)
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.base+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// login opens the login page, as a browser does, and posts form with the
// page's login token.
func (b *browser) login(form url.Values) (int, string) {
	b.t.Helper()
	st, page := b.get("/login")
	if st != 200 {
		b.t.Fatalf("login page: %d\n%s", st, page)
	}
	form.Set("csrf", find(b.t, csrfRE, page))
	return b.post("/login", form)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
var pendingRE = regexp.MustCompile(`name="pending" value="([^"]+)"`)
var revRE = regexp.MustCompile(`name="rev" value="([0-9]+)"`)

func find(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, body)
	}
	return m[1]
}

type env struct {
	cluster *etcdtest.Cluster
	cli     *clientv3.Client
	srv     *Server
	ts      *httptest.Server
	bodies  []string
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	c := etcdtest.New(t)
	cli := c.Client(t)
	seed(t, cli)
	opts := Options{Client: cli, Prefixes: []string{prefix}, Tokens: []string{token}}
	if mod != nil {
		mod(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	e := &env{cluster: c, cli: cli, srv: srv, ts: ts}
	t.Cleanup(func() { checkNoSecrets(t, e.bodies) })
	return e
}

func checkNoSecrets(t *testing.T, bodies []string) {
	t.Helper()
	for i, b := range bodies {
		for _, s := range secrets {
			if strings.Contains(b, s) {
				t.Errorf("response %d holds the secret value %q:\n%s", i, s, b)
			}
		}
	}
}

func (e *env) loggedIn(t *testing.T) (*browser, string) {
	t.Helper()
	b := newBrowser(t, e.ts.URL, &e.bodies)
	st, body := b.login(url.Values{"token": {token}, "next": {"/config"}})
	if st != 200 || !strings.Contains(body, "db.pool") {
		t.Fatalf("login: %d\n%s", st, body)
	}
	return b, find(t, csrfRE, body)
}

// dropUnknown deletes the key the schema does not allow (every write
// would be invalid with it).
func (e *env) dropUnknown(t *testing.T) {
	t.Helper()
	if _, err := e.cli.Delete(context.Background(), prefix+"/data/db/pasword"); err != nil {
		t.Fatal(err)
	}
}

func (e *env) value(t *testing.T, key string) string {
	t.Helper()
	resp, err := e.cli.Get(context.Background(), prefix+"/data/"+key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

func TestPages(t *testing.T) {
	e := newEnv(t, nil)
	b, csrf := e.loggedIn(t)

	st, body := b.get("/config?p=" + url.QueryEscape(prefix))
	for _, want := range []string{"db.pool", "connections in the pool", "integer", "db.password", "******", "db.pasword"} {
		if !strings.Contains(body, want) {
			t.Errorf("config page lacks %q", want)
		}
	}
	if st != 200 {
		t.Fatalf("config: %d", st)
	}

	// Push: a YAML document, the secret kept as ******.
	st, body = b.get("/push")
	if st != 200 {
		t.Fatalf("push page: %d", st)
	}
	doc := "db:\n  pool: 10\n  host: db3.local\n  password: '******'\n"
	st, body = b.post("/push", url.Values{"csrf": {csrf}, "document": {doc}, "format": {"yaml"}, "rev": {find(t, revRE, body)}, "message": {"pushed"}})
	if st != 200 || !strings.Contains(body, "<ins>db3.local</ins>") || !strings.Contains(body, "db.pasword") {
		t.Fatalf("push preview: %d\n%s", st, body)
	}
	if st, _ = b.post("/save", url.Values{"csrf": {csrf}, "pending": {find(t, pendingRE, body)}, "message": {"pushed"}}); st != 200 {
		t.Fatalf("push: %d", st)
	}
	if e.value(t, "db/host") != "db3.local" || e.value(t, "db/password") != secretVal || e.value(t, "db/pasword") != "" {
		t.Fatalf("after push: host %q", e.value(t, "db/host"))
	}
	// An invalid document is refused with its path.
	st, body = b.post("/push", url.Values{"csrf": {csrf}, "document": {`{"db": {"pool": 500}}`}, "format": {"json"}, "rev": {"0"}})
	if st != http.StatusUnprocessableEntity || !strings.Contains(body, "db.pool") {
		t.Fatalf("invalid push: %d\n%s", st, body)
	}

	// Edit db.pool: preview shows the diff, save writes with the author.
	st, body = b.get("/edit?path=db.pool")
	if st != 200 || !strings.Contains(body, `value="10"`) {
		t.Fatalf("edit: %d\n%s", st, body)
	}
	rev := find(t, revRE, body)
	st, body = b.post("/edit", url.Values{"csrf": {csrf}, "path": {"db.pool"}, "value": {"20"}, "rev": {rev}, "action": {"preview"}, "message": {"more connections"}})
	if st != 200 || !strings.Contains(body, "<del>10</del> → <ins>20</ins>") {
		t.Fatalf("preview: %d\n%s", st, body)
	}
	if e.value(t, "db/pool") != "10" {
		t.Fatal("the preview wrote")
	}
	st, body = b.post("/save", url.Values{"csrf": {csrf}, "pending": {find(t, pendingRE, body)}, "message": {"more connections"}})
	if st != 200 || !strings.Contains(body, "Saved: version") {
		t.Fatalf("save: %d\n%s", st, body)
	}
	if got := e.value(t, "db/pool"); got != "20" {
		t.Fatalf("db/pool = %q after save", got)
	}

	// The secret leaf: its input is empty; leaving it empty keeps it.
	st, body = b.get("/edit?path=db.password")
	if st != 200 || !strings.Contains(body, "leave empty to keep") || !strings.Contains(body, `id="value" value=""`) {
		t.Fatalf("secret edit: %d\n%s", st, body)
	}
	st, body = b.post("/edit", url.Values{"csrf": {csrf}, "path": {"db.password"}, "value": {""}, "rev": {find(t, revRE, body)}, "action": {"preview"}})
	if st != 200 || !strings.Contains(body, "No changes") {
		t.Fatalf("secret keep: %d\n%s", st, body)
	}
	// A new secret value is previewed masked, and saved.
	st, body = b.post("/edit", url.Values{"csrf": {csrf}, "path": {"db.password"}, "value": {"new-" + secretVal}, "rev": {find(t, revRE, body)}, "action": {"preview"}})
	if st != 200 || !strings.Contains(body, "<del>******</del> → <ins>******</ins>") {
		t.Fatalf("secret preview: %d\n%s", st, body)
	}
	if st, _ = b.post("/save", url.Values{"csrf": {csrf}, "pending": {find(t, pendingRE, body)}}); st != 200 {
		t.Fatalf("secret save: %d", st)
	}
	if e.value(t, "db/password") != "new-"+secretVal {
		t.Fatal("secret not saved")
	}

	// Add and delete a leaf.
	st, body = b.get("/edit?path=db.host")
	st, body = b.post("/edit", url.Values{"csrf": {csrf}, "path": {"db.host"}, "rev": {find(t, revRE, body)}, "action": {"delete"}})
	if st != 200 || !strings.Contains(body, "<del>db3.local</del>") {
		t.Fatalf("delete preview: %d\n%s", st, body)
	}
	if st, _ = b.post("/save", url.Values{"csrf": {csrf}, "pending": {find(t, pendingRE, body)}}); st != 200 || e.value(t, "db/host") != "" {
		t.Fatalf("delete: %d, db/host %q", st, e.value(t, "db/host"))
	}
	st, body = b.get("/edit?path=")
	st, body = b.post("/edit", url.Values{"csrf": {csrf}, "path": {"db.host"}, "value": {"db2.local"}, "rev": {find(t, revRE, body)}, "action": {"preview"}})
	if st != 200 || !strings.Contains(body, "<ins>db2.local</ins>") {
		t.Fatalf("add preview: %d\n%s", st, body)
	}
	if st, _ = b.post("/save", url.Values{"csrf": {csrf}, "pending": {find(t, pendingRE, body)}}); st != 200 || e.value(t, "db/host") != "db2.local" {
		t.Fatalf("add: %d", st)
	}

	// History: authors and messages; a diff; a rollback with confirmation.
	st, body = b.get("/history")
	for _, want := range []string{"token:", "more connections", "pushed", "seed"} {
		if !strings.Contains(body, want) {
			t.Errorf("history lacks %q\n%s", want, body)
		}
	}
	st, body = b.get("/diff?from=3&to=4")
	if st != 200 || !strings.Contains(body, "<del>10</del> → <ins>20</ins>") {
		t.Fatalf("diff: %d\n%s", st, body)
	}
	st, body = b.post("/rollback", url.Values{"csrf": {csrf}, "version": {"3"}})
	if st != 200 || !strings.Contains(body, "Confirm rollback") {
		t.Fatalf("rollback preview: %d\n%s", st, body)
	}
	if e.value(t, "db/host") != "db2.local" {
		t.Fatal("the rollback preview wrote")
	}
	st, body = b.post("/save", url.Values{"csrf": {csrf}, "pending": {find(t, pendingRE, body)}, "message": {"back"}})
	if st != 200 || e.value(t, "db/pool") != "10" {
		t.Fatalf("rollback: %d, pool %q\n%s", st, e.value(t, "db/pool"), body)
	}

	// Instances and rollout.
	if st, body = b.get("/instances"); st != 200 || !strings.Contains(body, "0 of 0") {
		t.Fatalf("instances: %d\n%s", st, body)
	}
	if st, body = b.get("/rollout"); st != 200 || !strings.Contains(body, "No rollout") {
		t.Fatalf("rollout: %d\n%s", st, body)
	}
	st, body = b.post("/rollout", url.Values{"csrf": {csrf}, "action": {"start"}, "set": {"db.pool=40\ndb.password=" + secretVal}, "steps": {"50,100"}, "bake": {"1h"}, "message": {"canary"}})
	if st != 200 || !strings.Contains(body, "running") || !strings.Contains(body, "db.pool") {
		t.Fatalf("rollout start: %d\n%s", st, body)
	}
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(body)
	if id == nil {
		t.Fatalf("no rollout id:\n%s", body)
	}
	for _, action := range []string{"pause", "resume", "abort"} {
		st, body = b.post("/rollout", url.Values{"csrf": {csrf}, "action": {action}, "id": {id[1]}, "reason": {"test"}})
		if st != 200 {
			t.Fatalf("rollout %s: %d\n%s", action, st, body)
		}
	}
	if !strings.Contains(body, "aborted") || !strings.Contains(body, "test (by token:") {
		t.Fatalf("after abort:\n%s", body)
	}

	// JSON.
	st, body = b.get("/api/config")
	if st != 200 || !strings.Contains(body, `"db.pool": "10"`) || !strings.Contains(body, `"db.password": "******"`) {
		t.Fatalf("api: %d\n%s", st, body)
	}

	// Headers.
	resp, err := b.c.Get(e.ts.URL + "/config")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{"Content-Security-Policy": "default-src 'self'", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"} {
		if !strings.Contains(resp.Header.Get(h), want) {
			t.Errorf("%s: %q", h, resp.Header.Get(h))
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Error("CSP lacks frame-ancestors")
	}
	for _, f := range []string{"/static/style.css", "/static/live.js"} {
		if st, _ := b.get(f); st != 200 {
			t.Errorf("%s: %d", f, st)
		}
	}
}

func TestSessionCookie(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SecureCookies = true })
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// Secure cookies do not travel over the test's plain HTTP by
	// themselves: the login cookie is carried by hand.
	page, err := c.Get(e.ts.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	form := url.Values{"token": {token}, "csrf": {find(t, csrfRE, string(body))}}
	req, _ := http.NewRequest("POST", e.ts.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range page.Cookies() {
		req.AddCookie(ck)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	for what, sc := range map[string]string{"session": resp.Header.Get("Set-Cookie"), "login form": page.Header.Get("Set-Cookie")} {
		for _, want := range []string{"HttpOnly", "SameSite=Strict", "Secure"} {
			if !strings.Contains(sc, want) {
				t.Errorf("%s Set-Cookie %q lacks %s", what, sc, want)
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, nil)
	anon := newBrowser(t, e.ts.URL, &e.bodies)
	anon.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	t.Run("no auth", func(t *testing.T) {
		for _, p := range []string{"/config", "/history", "/instances", "/rollout", "/push", "/edit?path=db.pool"} {
			st, _ := anon.get(p)
			if st != http.StatusSeeOther {
				t.Errorf("GET %s without a session: %d, want a redirect to the login", p, st)
			}
		}
		for _, p := range []string{"/events", "/api/config"} {
			if st, _ := anon.get(p); st != http.StatusUnauthorized {
				t.Errorf("GET %s: %d", p, st)
			}
		}
		if st, _ := anon.post("/edit", url.Values{"path": {"db.pool"}, "value": {"50"}}); st != http.StatusUnauthorized {
			t.Errorf("POST without a session: %d", st)
		}
		if st, _ := anon.post("/save", url.Values{}); st != http.StatusUnauthorized {
			t.Errorf("POST /save without a session: %d", st)
		}
	})
	t.Run("login CSRF", func(t *testing.T) {
		// Another site can post the login form, with credentials of its
		// own, but can neither read nor set the login page's token.
		other := newBrowser(t, e.ts.URL, &e.bodies)
		other.c.CheckRedirect = anon.c.CheckRedirect
		if st, body := other.post("/login", url.Values{"token": {token}}); st != http.StatusForbidden || !strings.Contains(body, "login form token") {
			t.Errorf("login without the login page's token: %d %s", st, body)
		}
		_, page := anon.get("/login")
		stolen := find(t, csrfRE, page)
		other.get("/login") // its own cookie, not anon's
		if st, _ := other.post("/login", url.Values{"token": {token}, "csrf": {stolen}}); st != http.StatusForbidden {
			t.Errorf("login with another browser's token: %d", st)
		}
		if st, _ := anon.post("/login", url.Values{"token": {token}, "csrf": {stolen + "x"}}); st != http.StatusForbidden {
			t.Errorf("login with a wrong token: %d", st)
		}
		req, _ := http.NewRequest("POST", e.ts.URL+"/login", strings.NewReader(url.Values{"token": {token}, "csrf": {stolen}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if st, _ := anon.do(req); st != http.StatusForbidden {
			t.Errorf("cross-origin login: %d", st)
		}
		if st, _ := anon.get("/config"); st == 200 {
			t.Error("a refused login left a session")
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		st, body := anon.login(url.Values{"token": {"wrong-token-0123456789"}})
		if st != http.StatusUnauthorized || !strings.Contains(body, "Wrong token") {
			t.Errorf("login with a wrong token: %d", st)
		}
		req, _ := http.NewRequest("GET", e.ts.URL+"/api/config", nil)
		req.Header.Set("Authorization", "Bearer wrong-token-0123456789")
		if st, _ := anon.do(req); st != http.StatusUnauthorized {
			t.Errorf("wrong bearer: %d", st)
		}
		req, _ = http.NewRequest("GET", e.ts.URL+"/api/config", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if st, body := anon.do(req); st != 200 || !strings.Contains(body, "db.pool") {
			t.Errorf("right bearer: %d", st)
		}
	})
	e.dropUnknown(t)
	b, csrf := e.loggedIn(t)
	_, body := b.get("/edit?path=db.pool")
	rev := find(t, revRE, body)
	t.Run("csrf", func(t *testing.T) {
		form := url.Values{"path": {"db.pool"}, "value": {"50"}, "rev": {rev}, "action": {"preview"}}
		if st, _ := b.post("/edit", form); st != http.StatusForbidden {
			t.Errorf("no CSRF token: %d", st)
		}
		wrong := "0" + csrf[1:]
		if wrong == csrf {
			wrong = "1" + csrf[1:]
		}
		form.Set("csrf", wrong)
		if st, _ := b.post("/edit", form); st != http.StatusForbidden {
			t.Errorf("wrong CSRF token: %d", st)
		}
		for _, p := range []string{"/save", "/push", "/rollback", "/rollout", "/logout"} {
			if st, _ := b.post(p, url.Values{"csrf": {"nope"}}); st != http.StatusForbidden {
				t.Errorf("POST %s with a wrong CSRF token: %d", p, st)
			}
		}
		req, _ := http.NewRequest("POST", e.ts.URL+"/edit", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if st, _ := b.do(req); st != http.StatusForbidden {
			t.Errorf("cross-origin POST: %d", st)
		}
	})
	t.Run("invalid value", func(t *testing.T) {
		st, body := b.post("/edit", url.Values{"csrf": {csrf}, "path": {"db.pool"}, "value": {"500"}, "rev": {rev}, "action": {"preview"}})
		if st != http.StatusUnprocessableEntity || !regexp.MustCompile(`(?s)id="value-error"[^>]*>[^<]*maximum`).MatchString(body) {
			t.Fatalf("invalid value: %d\n%s", st, body)
		}
		if e.value(t, "db/pool") != "10" {
			t.Fatal("an invalid value was written")
		}
		if strings.Contains(body, `name="pending"`) {
			t.Fatal("an invalid value can be saved")
		}
	})
	t.Run("stale version", func(t *testing.T) {
		st, body := b.post("/edit", url.Values{"csrf": {csrf}, "path": {"db.pool"}, "value": {"50"}, "rev": {rev}, "action": {"preview"}})
		if st != 200 {
			t.Fatalf("preview: %d", st)
		}
		pend := find(t, pendingRE, body)
		// Someone else writes meanwhile.
		w, _ := config.NewRawWriter(e.cli, prefix)
		if _, err := w.Set(context.Background(), "db.pool", "60", config.Author("other")); err != nil {
			t.Fatal(err)
		}
		st, body = b.post("/save", url.Values{"csrf": {csrf}, "pending": {pend}})
		if st != http.StatusConflict || !strings.Contains(body, "Conflict") || !strings.Contains(body, "<del>60</del> → <ins>50</ins>") {
			t.Fatalf("stale save: %d\n%s", st, body)
		}
		if e.value(t, "db/pool") != "60" {
			t.Fatal("a stale page overwrote")
		}
		// The same stale revision at preview is a conflict too.
		st, body = b.post("/edit", url.Values{"csrf": {csrf}, "path": {"db.pool"}, "value": {"50"}, "rev": {rev}, "action": {"preview"}})
		if st != http.StatusConflict || !strings.Contains(body, "Conflict") {
			t.Fatalf("stale preview: %d\n%s", st, body)
		}
		// A preview id is used once.
		if st, _ := b.post("/save", url.Values{"csrf": {csrf}, "pending": {pend}}); st != http.StatusBadRequest {
			t.Fatalf("reused preview: %d", st)
		}
	})
	t.Run("unknown prefix", func(t *testing.T) {
		if st, _ := b.get("/config?p=/other"); st != http.StatusNotFound {
			t.Errorf("unknown prefix: %d", st)
		}
	})
	t.Run("logout", func(t *testing.T) {
		b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		if st, _ := b.post("/logout", url.Values{"csrf": {csrf}}); st != http.StatusSeeOther {
			t.Fatalf("logout: %d", st)
		}
		if st, _ := b.get("/config"); st != http.StatusSeeOther {
			t.Fatalf("after logout: %d", st)
		}
	})
}

func TestReadOnly(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ReadOnly = true })
	b, csrf := e.loggedIn(t)
	for _, p := range []string{"/config", "/history", "/instances", "/rollout", "/push"} {
		st, body := b.get(p)
		if st != 200 || !strings.Contains(body, "read-only") {
			t.Errorf("GET %s read-only: %d", p, st)
		}
	}
	if _, body := b.get("/config"); strings.Contains(body, "Edit</a>") {
		t.Error("read-only config page offers Edit")
	}
	for _, p := range []string{"/edit", "/save", "/push", "/rollback", "/rollout"} {
		st, body := b.post(p, url.Values{"csrf": {csrf}, "path": {"db.pool"}, "value": {"50"}, "action": {"preview"}, "version": {"1"}})
		if st != http.StatusForbidden || !strings.Contains(body, "read-only") {
			t.Errorf("POST %s read-only: %d", p, st)
		}
	}
	if e.value(t, "db/pool") != "10" {
		t.Fatal("read-only console wrote")
	}
}

func TestNoAuth(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.NoAuth, o.Tokens = true, nil })
	b := newBrowser(t, e.ts.URL, &e.bodies)
	st, body := b.get("/config")
	if st != 200 || !strings.Contains(body, "anonymous") {
		t.Fatalf("no-auth: %d", st)
	}
	if st, _ := b.post("/edit", url.Values{"path": {"db.pool"}}); st != http.StatusForbidden {
		t.Fatalf("no-auth POST without CSRF: %d", st)
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t, nil)
	e.dropUnknown(t)
	b, _ := e.loggedIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/events?p="+url.QueryEscape(prefix), nil)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	var seen strings.Builder
	readUntil := func(want string) {
		t.Helper()
		for !strings.Contains(seen.String(), want) {
			line, err := r.ReadString('\n')
			seen.WriteString(line)
			if err != nil {
				t.Fatalf("stream ended before %q: %v\n%s", want, err, seen.String())
			}
		}
	}
	readUntil("event: hello")
	// A second browser shares the watch.
	b2, _ := e.loggedIn(t)
	req2, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/events", nil)
	resp2, err := b2.c.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	e.srv.hub.mu.Lock()
	n := len(e.srv.hub.watches)
	e.srv.hub.mu.Unlock()
	if n != 1 {
		t.Errorf("%d watches for one prefix", n)
	}
	w, _ := config.NewRawWriter(e.cli, prefix)
	if _, err := w.Set(context.Background(), "db.password", "other-"+secretVal); err != nil {
		t.Fatal(err)
	}
	readUntil("event: change")
	e.bodies = append(e.bodies, seen.String())
	cancel()
}

func TestEtcdAuth(t *testing.T) {
	c := etcdtest.New(t, etcdtest.WithAuth("rootpw"))
	root := c.Client(t)
	seed(t, root)
	if _, err := root.Delete(context.Background(), prefix+"/data/db/pasword"); err != nil {
		t.Fatal(err)
	}
	c.AddUser(t, "reader", "readerpw", prefix+"/", "")
	c.AddUser(t, "writer", "writerpw", "", prefix+"/")
	srv, err := New(Options{Prefixes: []string{prefix}, EtcdAuth: true,
		NewClient: func(ctx context.Context, user, pw string) (*clientv3.Client, error) {
			cfg := c.ClientConfig()
			cfg.Username, cfg.Password = user, pw
			cfg.Context = context.Background()
			cli, err := clientv3.New(cfg)
			if err != nil {
				return nil, err
			}
			if _, err := cli.Authenticate(ctx, user, pw); err != nil {
				cli.Close()
				return nil, err
			}
			return cli, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer func() { ts.Close(); srv.Close() }()
	var bodies []string
	defer func() { checkNoSecrets(t, bodies) }()

	bad := newBrowser(t, ts.URL, &bodies)
	if st, body := bad.login(url.Values{"user": {"reader"}, "password": {"wrong"}}); st != http.StatusUnauthorized || !strings.Contains(body, "refused") {
		t.Fatalf("wrong password: %d\n%s", st, body)
	}

	// A read-only etcd role can browse but not save.
	rd := newBrowser(t, ts.URL, &bodies)
	st, body := rd.login(url.Values{"user": {"reader"}, "password": {"readerpw"}, "next": {"/config"}})
	if st != 200 || !strings.Contains(body, "db.pool") || !strings.Contains(body, "reader") {
		t.Fatalf("reader login: %d\n%s", st, body)
	}
	csrf := find(t, csrfRE, body)
	for _, p := range []string{"/history", "/instances", "/rollout", "/push"} {
		if st, _ := rd.get(p); st != 200 {
			t.Errorf("reader GET %s: %d", p, st)
		}
	}
	_, body = rd.get("/edit?path=db.pool")
	st, body = rd.post("/edit", url.Values{"csrf": {csrf}, "path": {"db.pool"}, "value": {"20"}, "rev": {find(t, revRE, body)}, "action": {"preview"}})
	if st == 200 {
		st, body = rd.post("/save", url.Values{"csrf": {csrf}, "pending": {find(t, pendingRE, body)}})
	}
	if st != http.StatusForbidden || !strings.Contains(body, "permission denied") {
		t.Fatalf("reader save: %d\n%s", st, body)
	}
	resp, err := root.Get(context.Background(), prefix+"/data/db/pool")
	if err != nil || string(resp.Kvs[0].Value) != "10" {
		t.Fatalf("reader wrote: %v", err)
	}

	// A writer saves, as the author of the release.
	wr := newBrowser(t, ts.URL, &bodies)
	_, body = wr.login(url.Values{"user": {"writer"}, "password": {"writerpw"}, "next": {"/edit?path=db.pool"}})
	csrf = find(t, csrfRE, body)
	st, body = wr.post("/edit", url.Values{"csrf": {csrf}, "path": {"db.pool"}, "value": {"20"}, "rev": {find(t, revRE, body)}, "action": {"preview"}})
	if st != 200 {
		t.Fatalf("writer preview: %d\n%s", st, body)
	}
	if st, body = wr.post("/save", url.Values{"csrf": {csrf}, "pending": {find(t, pendingRE, body)}, "message": {"by writer"}}); st != 200 {
		t.Fatalf("writer save: %d\n%s", st, body)
	}
	_, body = wr.get("/history")
	if !regexp.MustCompile(`(?s)class="author">writer<.*by writer`).MatchString(body) {
		t.Fatalf("history lacks the writer:\n%s", body)
	}
}
