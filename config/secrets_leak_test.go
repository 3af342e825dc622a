package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/bigmap"
	"github.com/strataconf/strata/config"
)

// LeakCred is an element of a list, a map value and a pointed-to struct,
// with a secret field.
type LeakCred struct {
	User  string `koanf:"user"`
	Token string `koanf:"token" secret:"true"`
}

type Leaky struct {
	Name  string              `koanf:"name"`
	Creds []LeakCred          `koanf:"creds" validate:"min=2"`
	Keys  map[string]string   `koanf:"keys" secret:"true"`
	Owner *LeakCred           `koanf:"owner"`
	Peers map[string]LeakCred `koanf:"peers"`
	// The same as bigmap.Maps: values with a secret field, and a secret map.
	Vault  bigmap.Map[LeakCred] `koanf:"vault" validate:"max=1"`
	Sealed bigmap.Map[string]   `koanf:"sealed" secret:"true"`
}

// leakMark is in every secret value the tests of this file store; no
// output may contain it.
const leakMark = "s3cr3t"

// syncBuffer is a bytes.Buffer safe for the logger's goroutine and the
// test's.
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

// noLeak fails the test when any of the texts holds leakMark.
func noLeak(t testing.TB, texts map[string]string) {
	t.Helper()
	for what, text := range texts {
		if strings.Contains(text, leakMark) {
			t.Errorf("%s shows a secret: %s", what, text)
		}
	}
}

// errorChain is the text of err and of every error it wraps.
func errorChain(err error) string {
	var b strings.Builder
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		b.WriteString(e.Error())
		b.WriteString("\n")
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return b.String()
}

// loadLeaky loads Leaky from p with a JSON logger writing to the returned
// buffer and an instance record "leak".
func loadLeaky(t *testing.T, cli *clientv3.Client, p string) (*config.Config[Leaky], *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg, err := config.Load[Leaky](context.Background(), config.WithEtcd(cli, p), config.WithLogger(logger),
		config.WithInstance("leak", nil, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cfg.Close() })
	return cfg, logs
}

// rejectionShown waits until the instance record shows the rejection of
// rev and returns every place the n-th rejection is shown: the error given
// to OnError (and what it wraps), Health, the health handler's body, the
// instance record and the logs.
func rejectionShown(t *testing.T, cli *clientv3.Client, p string, cfg *config.Config[Leaky], r *recorder[Leaky], logs *syncBuffer, n int, rev int64) map[string]string {
	t.Helper()
	r.wait(t, fmt.Sprintf("rejection %d", n), func(_ []config.Change[Leaky], errs []error) bool { return len(errs) >= n })
	var rec config.Instance
	waitFor(t, "the rejection in the instance record", func() bool {
		ins, err := config.Instances(context.Background(), cli, p)
		if err != nil || len(ins) != 1 || ins[0].RejectedRevision != rev {
			return false
		}
		rec = ins[0]
		return true
	})
	r.mu.Lock()
	err := r.errs[n-1]
	r.mu.Unlock()
	_, h := healthOf(t, cfg.HealthHandler())
	hj, _ := json.Marshal(h)
	rj, _ := json.Marshal(rec)
	return map[string]string{"error": errorChain(err), "Health": cfg.Health().LastError, "health handler": string(hj),
		"instance record": string(rj), "logs": logs.String()}
}

// A secret in an element of a list, a map value or a struct behind a
// pointer never shows: not in Snapshot().Values(), nor, when a rule on
// the list fails or the struct cannot be bound, in the error, Health, the
// instance record or the logs.
func TestSecretsOfElementsStayHidden(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "name", "app")
	put(t, cli, p, "creds/0/user", "zero")
	put(t, cli, p, "creds/0/token", "tok-zero-"+leakMark)
	put(t, cli, p, "creds/1/user", "one")
	put(t, cli, p, "creds/1/token", "tok-one-"+leakMark)
	put(t, cli, p, "keys/deploy", "key-"+leakMark)
	put(t, cli, p, "peers/east/user", "east")
	put(t, cli, p, "peers/east/token", "peer-"+leakMark)
	// A struct given as one leaf of JSON text holds its secret whole.
	put(t, cli, p, "owner", `{"user": "own", "token": "owner-`+leakMark+`"}`)

	cfg, logs := loadLeaky(t, cli, p)
	if got := cfg.Get(); len(got.Creds) != 2 || got.Creds[1].Token != "tok-one-"+leakMark || got.Owner == nil || got.Owner.Token != "owner-"+leakMark {
		t.Fatalf("bound %+v", got)
	}
	values := cfg.Snapshot().Values()
	for path, want := range map[string]any{
		"creds.0.token": config.Mask, "creds.1.token": config.Mask, "keys.deploy": config.Mask,
		"peers.east.token": config.Mask, "owner": config.Mask,
		"creds.0.user": "zero", "peers.east.user": "east", "name": "app",
	} {
		if values[path] != want {
			t.Errorf("Values()[%q] = %v, want %v", path, values[path], want)
		}
	}
	noLeak(t, map[string]string{"Values": jsonString(values)})

	// A rule on the list fails: the list holds the secrets of its
	// elements.
	r := record(cfg)
	resp, err := cli.Delete(context.Background(), p+"/data/creds/1/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	shown := rejectionShown(t, cli, p, cfg, r, logs, 1, resp.Header.Revision)
	noLeak(t, shown)
	for what, text := range shown {
		if !strings.Contains(text, "creds") || !strings.Contains(text, "min=2") {
			t.Errorf("%s does not name the path and the rule: %s", what, text)
		}
	}
	var ie *config.InvalidError
	r.mu.Lock()
	first := r.errs[0]
	r.mu.Unlock()
	if !errors.As(first, &ie) || len(ie.Problems) != 1 || ie.Problems[0].Path != "creds" {
		t.Errorf("error %v, want one problem at creds", first)
	}

	// The struct behind a pointer, given as JSON text, cannot be bound.
	put(t, cli, p, "creds/1/token", "tok-one-"+leakMark)
	r.wait(t, "the list valid again", func(ch []config.Change[Leaky], _ []error) bool { return len(ch) == 1 })
	rev := put(t, cli, p, "owner", `{"user": "own", "token": "owner-`+leakMark+`"`) // no closing brace
	shown = rejectionShown(t, cli, p, cfg, r, logs, 2, rev)
	noLeak(t, shown)
	if !strings.Contains(shown["error"], "owner") || !strings.Contains(shown["error"], p+"/data/owner") {
		t.Errorf("the error does not name the path and the key: %s", shown["error"])
	}
	noLeak(t, map[string]string{"Values": jsonString(cfg.Snapshot().Values())})
}

// The same holds for a bigmap.Map: a secret field of its values and a map
// tagged secret never show, in Values nor when a rule on the map fails.
func TestSecretsInBigmapsStayHidden(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "name", "app")
	put(t, cli, p, "creds/0/user", "zero")
	put(t, cli, p, "creds/1/user", "one")
	put(t, cli, p, "vault/east/user", "east")
	put(t, cli, p, "vault/east/token", "vault-"+leakMark)
	put(t, cli, p, "sealed/deploy", "sealed-"+leakMark)

	cfg, logs := loadLeaky(t, cli, p)
	if tok, _ := cfg.Get().Vault.Get("east"); tok.Token != "vault-"+leakMark {
		t.Fatalf("bound %+v", tok)
	}
	values := cfg.Snapshot().Values()
	for path, want := range map[string]any{"vault.east.token": config.Mask, "sealed.deploy": config.Mask, "vault.east.user": "east"} {
		if values[path] != want {
			t.Errorf("Values()[%q] = %v, want %v", path, values[path], want)
		}
	}
	noLeak(t, map[string]string{"Values": jsonString(values)})

	// A rule on the map fails: the map holds the secrets of its values.
	r := record(cfg)
	rev := put(t, cli, p, "vault/west/token", "west-"+leakMark)
	shown := rejectionShown(t, cli, p, cfg, r, logs, 1, rev)
	noLeak(t, shown)
	for what, text := range shown {
		if !strings.Contains(text, "vault") || !strings.Contains(text, "max=1") {
			t.Errorf("%s does not name the path and the rule: %s", what, text)
		}
	}
}

// A document whose parse error would quote a secret (yaml's "unknown
// anchor 'x'", a value its tag cannot decode, a number no 64-bit type
// holds, JSON's invalid character, TOML's strconv text) is refused naming
// its key and line, without the secret.
func TestDocumentParseErrorsQuoteNoSecret(t *testing.T) {
	cli := client(t)
	tests := []struct {
		key, doc, line string
	}{
		{"app.yaml", "name: app\ncreds:\n  - user: a\n    token: *tok-" + leakMark + "\n", "line 4"},
		{"app.yaml", "name: app\ncreds:\n  - user: a\n    token: !!int tok-" + leakMark + "\n", "line 4"},
		{"keys.yaml", "deploy: 12345" + "67890123456789012345678901234567890\n", "line 1"},
		{"app.json", "{\"name\": \"app\",\n \"keys\": {\"deploy\": 1234567890123456789012345678901234567890}}", ""},
		{"app.json", "{\"name\": \"app\",\n \"keys\": {\"deploy\": \"" + leakMark + "\\q\"}}", "line 2"},
		{"app.toml", "name = \"app\"\n[keys]\ndeploy = 99999999999999999999" + "1234" + "\n", "line 3"},
		{"app.toml", "name = \"app\"\n[keys]\ndeploy = \"" + leakMark + "\\q\"\n", "line 3"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s", i, tt.key), func(t *testing.T) {
			p := prefix(t)
			put(t, cli, p, tt.key, tt.doc)
			_, err := config.Load[Leaky](context.Background(), config.WithEtcd(cli, p))
			if !errors.Is(err, config.ErrSource) || !strings.Contains(err.Error(), p+"/data/"+tt.key) || !strings.Contains(err.Error(), tt.line) {
				t.Fatalf("err = %v, want ErrSource naming %s and %q", err, tt.key, tt.line)
			}
			text := errorChain(err)
			for _, hidden := range []string{leakMark, "1234567890123456789012345678901234567890", "999999999999999999991234", "67890123456789012345678901234567890", "'q'", "U+0071"} {
				if strings.Contains(text, hidden) {
					t.Fatalf("the error quotes the document (%s): %s", hidden, text)
				}
			}
		})
	}

	// While running: the rejection reaches OnError, Health, the instance
	// record and the logs without the secret.
	p := prefix(t)
	put(t, cli, p, "name", "app")
	put(t, cli, p, "creds/0/token", "a")
	put(t, cli, p, "creds/1/token", "b")
	cfg, logs := loadLeaky(t, cli, p)
	r := record(cfg)
	rev := put(t, cli, p, "owner.yaml", "user: own\ntoken: *"+leakMark+"\n")
	shown := rejectionShown(t, cli, p, cfg, r, logs, 1, rev)
	noLeak(t, shown)
	if !strings.Contains(shown["instance record"], "owner.yaml") || !strings.Contains(shown["instance record"], "line 2") {
		t.Errorf("the record does not name the key and line: %s", shown["instance record"])
	}
}

// Writer[T] and RawWriter never show a secret in an element: not in the
// changes a write returns, nor in History, nor in the error of a write a
// rule on the list refuses.
func TestWritersHideSecretsOfElements(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := mustWriter[Leaky](t, cli, p)
	rel, err := w.Update(ctx, func(a *Leaky) error {
		a.Name = "app"
		a.Creds = []LeakCred{{User: "zero", Token: "tok-zero-" + leakMark}, {User: "one", Token: "tok-one-" + leakMark}}
		a.Keys = map[string]string{"deploy": "key-" + leakMark}
		a.Owner = &LeakCred{User: "own", Token: "owner-" + leakMark}
		a.Peers = map[string]LeakCred{"east": {User: "east", Token: "peer-" + leakMark}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all := []string{fmt.Sprintf("%+v", rel)}
	// Writer[T] keeps the list as one leaf of JSON text: it is masked whole.
	if rel, err = w.Update(ctx, func(a *Leaky) error { a.Creds[1].Token = "tok-new-" + leakMark; return nil }); err != nil {
		t.Fatal(err)
	}
	all = append(all, fmt.Sprintf("%+v", rel))
	if len(rel.Changes) != 1 || rel.Changes[0].Key != "creds" || rel.Changes[0].Old != config.Mask || rel.Changes[0].New != config.Mask {
		t.Errorf("changes: %+v", rel.Changes)
	}
	_, err = w.Update(ctx, func(a *Leaky) error { a.Creds = a.Creds[:1]; return nil })
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "creds") || !strings.Contains(err.Error(), "min=2") {
		t.Fatalf("Update to one element: %v, want ErrInvalid naming creds and min=2", err)
	}
	all = append(all, errorChain(err))

	raw := mustRaw(t, cli, p) // masks by the schema Writer[T] published
	for _, path := range []string{"peers.east.token", "keys.deploy", "owner.token"} {
		if rel, err = raw.Set(ctx, path, "raw-"+leakMark); err != nil {
			t.Fatal(err)
		}
		all = append(all, fmt.Sprintf("%+v", rel))
		if len(rel.Changes) != 1 || rel.Changes[0].New != config.Mask {
			t.Errorf("set %s: changes %+v", path, rel.Changes)
		}
	}
	// Around the writers: index keys of the list, and a struct given as
	// one leaf of JSON text.
	put(t, cli, p, "creds/2/token", "tok-around-"+leakMark)
	put(t, cli, p, "peers/west", `{"user": "west", "token": "peer-around-`+leakMark+`"}`)
	put(t, cli, p, "owner", `{"user": "own", "token": "owner-around-`+leakMark+`"}`)
	hist, err := w.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, fmt.Sprintf("%+v", hist))
	if len(hist) == 0 || !hist[0].Unrecorded || len(hist[0].Changes) != 3 {
		t.Fatalf("history: %+v", hist)
	}
	for _, text := range all {
		noLeak(t, map[string]string{"writes": text})
	}
}
