package config_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/secret"
)

type Vault struct {
	Password string `koanf:"password" secret:"true" validate:"min=8"`
	Token    string `koanf:"token" secret:"true"`
	Pool     int    `koanf:"pool" validate:"min=1"`
}

func newRing(t *testing.T, current string, ids ...string) *secret.Ring {
	t.Helper()
	keys := map[string][]byte{}
	for _, id := range ids {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			t.Fatal(err)
		}
		keys[id] = k
	}
	r, err := secret.NewRing(current, keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ringWith returns a ring holding the given keys of other rings.
func ringWith(t *testing.T, current string, from map[string]*secret.Ring) *secret.Ring {
	t.Helper()
	keys := map[string][]byte{}
	for id, r := range from {
		k, err := r.Key(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = k
	}
	r, err := secret.NewRing(current, keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSealedSecrets: a writer with a keyring stores secrets sealed, in
// the data key and the release record; a Config with the keyring loads
// and follows the plain values; tampered, moved and foreign values are
// rejected with the last good value kept and no value in the error.
func TestSealedSecrets(t *testing.T) {
	cli := client(t)
	ctx := context.Background()
	p := prefix(t)
	ring := newRing(t, "k1", "k1")
	w, err := config.NewWriter[Vault](cli, p, config.WithWriterKeyring(ring))
	if err != nil {
		t.Fatal(err)
	}
	const pw = "hunter2hunter2"
	if _, err := w.Update(ctx, func(v *Vault) error { v.Password, v.Token, v.Pool = pw, "tok-secret-1", 10; return nil }); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, p+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	sealedPW := ""
	for _, kv := range resp.Kvs {
		if bytes.Contains(kv.Value, []byte(pw)) || bytes.Contains(kv.Value, []byte("tok-secret-1")) {
			t.Fatalf("%s holds a secret in plain text", kv.Key)
		}
		if string(kv.Key) == p+"/data/password" {
			sealedPW = string(kv.Value)
		}
		if strings.HasPrefix(string(kv.Key), p+"/meta/releases/") && !bytes.Contains(kv.Value, []byte(secret.Prefix)) {
			t.Fatalf("release record %s holds no sealed value: %s", kv.Key, kv.Value)
		}
	}
	if id, ok := secret.KeyID(sealedPW); !ok || id != "k1" {
		t.Fatalf("data key holds %q", sealedPW)
	}
	if v, _, _, err := w.Get(ctx); err != nil || v.Password != pw {
		t.Fatalf("Writer.Get = %+v, %v", v, err)
	}

	cfg, err := config.Load[Vault](ctx, config.WithEtcd(cli, p), config.WithKeyring(ring))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)
	if got := cfg.Get(); got.Password != pw || got.Token != "tok-secret-1" {
		t.Fatalf("loaded %+v", got)
	}
	// A change through the writer arrives on the fast path, opened.
	if _, err := w.Update(ctx, func(v *Vault) error { v.Password = "correct horse"; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new password", func() bool { return cfg.Get().Password == "correct horse" })

	rejected := func(what, value string) {
		t.Helper()
		n := len(r.errs)
		rev := put(t, cli, p, "password", value)
		r.wait(t, what, func(_ []config.Change[Vault], errs []error) bool { return len(errs) > n })
		r.mu.Lock()
		msg := r.errs[len(r.errs)-1].Error()
		r.mu.Unlock()
		if cfg.Get().Password != "correct horse" {
			t.Fatalf("%s replaced the good value", what)
		}
		if strings.Contains(msg, "correct horse") || strings.Contains(msg, value) || strings.Contains(msg, pw) {
			t.Fatalf("%s: the error shows a value: %s", what, msg)
		}
		if !strings.Contains(msg, "password") {
			t.Fatalf("%s: the error does not name the path: %s", what, msg)
		}
		_ = rev
	}
	// A flipped byte.
	cur, _ := cli.Get(ctx, p+"/data/password")
	env := []byte(string(cur.Kvs[0].Value))
	env[len(env)-3] ^= 0x01
	if env[len(env)-3] == '-' || env[len(env)-3] == '_' {
		env[len(env)-3] = 'A'
	}
	rejected("a flipped byte", string(env))
	// The token's ciphertext moved to the password.
	tok, _ := cli.Get(ctx, p+"/data/token")
	rejected("a value moved from another path", string(tok.Kvs[0].Value))
	// A value sealed with a key the ring does not hold.
	other := newRing(t, "k9", "k9")
	foreign, err := secret.Seal(ctx, other, strings.TrimSuffix(p, "/"), "password", "sealed elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	rejected("an unknown key id", foreign)
	r.mu.Lock()
	last := r.errs[len(r.errs)-1]
	r.mu.Unlock()
	if !strings.Contains(last.Error(), "k9") || !errors.Is(last, secret.ErrUnknownKey) {
		t.Fatalf("the error does not name the key id: %v", last)
	}

	// Without a keyring a sealed value is refused; WithRequireEncryption
	// refuses plain text at a secret path.
	if _, err := w.Update(ctx, func(v *Vault) error { v.Password = "back to good"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load[Vault](ctx, config.WithEtcd(cli, p)); err == nil || !strings.Contains(err.Error(), "WithKeyring") {
		t.Fatalf("Load without a keyring: %v", err)
	}
	put(t, cli, p, "token", "plain-token")
	if _, err := config.Load[Vault](ctx, config.WithEtcd(cli, p), config.WithKeyring(ring), config.WithRequireEncryption()); err == nil ||
		!strings.Contains(err.Error(), "token") || strings.Contains(err.Error(), "plain-token") {
		t.Fatalf("Load with WithRequireEncryption over plain text: %v", err)
	}
}

// TestRotation: Rotate seals every secret under the new current key in one
// release the application applies with no visible change; without the old
// key the application still loads, and a rollback to a release sealed with
// it is refused, naming the key.
func TestRotation(t *testing.T) {
	cli := client(t)
	ctx := context.Background()
	p := prefix(t)
	k1 := newRing(t, "k1", "k1")
	w1, err := config.NewWriter[Vault](cli, p, config.WithWriterKeyring(k1))
	if err != nil {
		t.Fatal(err)
	}
	first, err := w1.Update(ctx, func(v *Vault) error { v.Password, v.Token, v.Pool = "first password", "tok", 1; return nil })
	if err != nil {
		t.Fatal(err)
	}
	k2 := newRing(t, "k2", "k2")
	both := ringWith(t, "k2", map[string]*secret.Ring{"k1": k1, "k2": k2})
	cfg, err := config.Load[Vault](ctx, config.WithEtcd(cli, p), config.WithKeyring(both))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)

	raw, err := config.NewRawWriter(cli, p, config.WithWriterKeyring(both), config.WithSecretPaths("password", "token"))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := raw.Rotate(ctx, config.Author("ops"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Changes) != 2 {
		t.Fatalf("rotation changed %+v", rel.Changes)
	}
	use, err := raw.KeyUse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if use.Data["k1"] != 0 || use.Data["k2"] != 2 || use.Releases["k1"] == 0 {
		t.Fatalf("after rotation: %+v", use)
	}
	waitFor(t, "the rotation's revision", func() bool { return cfg.Snapshot().Revision >= rel.Revision })
	time.Sleep(100 * time.Millisecond)
	r.mu.Lock()
	n := len(r.changes)
	r.mu.Unlock()
	if n != 0 || cfg.Get().Password != "first password" {
		t.Fatalf("the rotation was visible: %d changes, %+v", n, cfg.Get())
	}
	if again, err := raw.Rotate(ctx); err != nil || len(again.Changes) != 0 {
		t.Fatalf("a second rotation changed %+v (%v)", again, err)
	}

	// The old key leaves the ring.
	only2 := ringWith(t, "k2", map[string]*secret.Ring{"k2": k2})
	cfg2, err := config.Load[Vault](ctx, config.WithEtcd(cli, p), config.WithKeyring(only2))
	if err != nil {
		t.Fatalf("load without the old key: %v", err)
	}
	cfg2.Close()
	w2, err := config.NewWriter[Vault](cli, p, config.WithWriterKeyring(only2))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := cli.Get(ctx, p+"/meta/version")
	_, err = w2.Rollback(ctx, first.Version)
	if err == nil || !strings.Contains(err.Error(), "k1") || !errors.Is(err, secret.ErrUnknownKey) {
		t.Fatalf("rollback to a release sealed with a removed key: %v", err)
	}
	after, _ := cli.Get(ctx, p+"/meta/version")
	if after.Kvs[0].ModRevision != before.Kvs[0].ModRevision {
		t.Fatal("the refused rollback wrote")
	}
}

type Crew struct {
	Users   []CrewUser            `koanf:"users"`
	Tenants map[string]CrewTenant `koanf:"tenants"`
}

type CrewUser struct {
	Name     string `koanf:"name"`
	Password string `koanf:"password" secret:"true"`
}

type CrewTenant struct {
	Token string `koanf:"token" secret:"true"`
	Rate  int    `koanf:"rate"`
}

// TestSealedInsideContainers: secrets inside a list and a map are sealed
// too (a list held as one leaf is sealed whole) and load as plain values.
func TestSealedInsideContainers(t *testing.T) {
	cli := client(t)
	ctx := context.Background()
	p := prefix(t)
	ring := newRing(t, "k1", "k1")
	w, err := config.NewWriter[Crew](cli, p, config.WithWriterKeyring(ring))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Update(ctx, func(c *Crew) error {
		c.Users = []CrewUser{{Name: "ann", Password: "pw-of-ann"}, {Name: "bob", Password: "pw-of-bob"}}
		c.Tenants = map[string]CrewTenant{"acme": {Token: "tok-of-acme", Rate: 3}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, p+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		for _, s := range []string{"pw-of-ann", "pw-of-bob", "tok-of-acme"} {
			if bytes.Contains(kv.Value, []byte(s)) {
				t.Fatalf("%s holds %s in plain text", kv.Key, s)
			}
		}
	}
	cfg, err := config.Load[Crew](ctx, config.WithEtcd(cli, p), config.WithKeyring(ring), config.WithRequireEncryption())
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	got := cfg.Get()
	if len(got.Users) != 2 || got.Users[1].Password != "pw-of-bob" || got.Tenants["acme"].Token != "tok-of-acme" || got.Tenants["acme"].Rate != 3 {
		t.Fatalf("loaded %+v", got)
	}
}

// A change refused before it reaches the layer (a sealed value and no
// keyring) leaves the layer's keys as etcd holds them: the next change to
// another key is judged against them too, and rejected, as a fresh Load
// would be, until the sealed value is gone.
func TestRefusedChangeIsKept(t *testing.T) {
	cli := client(t)
	ctx := context.Background()
	p := prefix(t)
	put(t, cli, p, "password", "long enough")
	put(t, cli, p, "token", "plain")
	put(t, cli, p, "pool", "1")
	cfg, err := config.Load[Vault](ctx, config.WithEtcd(cli, p))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	errs := make(chan error, 10)
	cfg.OnError(func(err error) { errs <- err })
	// Changes applied in place first, so that the layer's tree stands for
	// its keys.
	for i := 2; i <= 4; i++ {
		put(t, cli, p, "pool", fmt.Sprint(i))
	}
	waitFor(t, "pool 4", func() bool { return cfg.Get().Pool == 4 })

	put(t, cli, p, "token", secret.Prefix+"k1:AAAA")
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "no keyring") {
			t.Fatalf("sealed value without a keyring: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sealed value was not refused")
	}
	put(t, cli, p, "pool", "5")
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "no keyring") {
			t.Fatalf("pool 5 with the sealed token still in etcd: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("pool 5 was applied (pool %d, token %q) while etcd holds a sealed token a fresh Load refuses", cfg.Get().Pool, cfg.Get().Token)
	}
	if _, err := config.Load[Vault](ctx, config.WithEtcd(cli, p)); err == nil {
		t.Fatal("a fresh Load accepted the sealed token without a keyring")
	}
	put(t, cli, p, "token", "plain again")
	waitFor(t, "pool 5 with a plain token", func() bool { return cfg.Get().Pool == 5 && cfg.Get().Token == "plain again" })
	put(t, cli, p, "pool", "6")
	waitFor(t, "pool 6", func() bool { return cfg.Get().Pool == 6 })
}
