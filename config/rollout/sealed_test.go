package rollout_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
	"github.com/strataconf/strata/config/secret"
)

type sealedApp struct {
	DB struct {
		Password string `koanf:"password" secret:"true"`
		Pool     int    `koanf:"pool"`
	} `koanf:"db"`
}

// TestSealedCandidate: with a keyring, a candidate's secret values are
// sealed in the rollout record as in data keys; a canary with the keyring
// runs the plain value; promotion stores it sealed.
func TestSealedCandidate(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	ring, err := secret.NewRing("k1", map[string][]byte{"k1": key})
	if err != nil {
		t.Fatal(err)
	}
	opts := []config.RawWriterOption{config.WithWriterKeyring(ring)}
	// The schema bounds the secret's length: a writer without the key
	// would validate the ciphertext.
	schemaDoc := []byte(`{"type":"object","properties":{"db":{"type":"object","properties":{
		"password":{"type":"string","x-secret":true,"maxLength":20},"pool":{"type":"integer"}}}}}`)
	w := writer(t, cli, p, opts...)
	if _, err := w.PublishSchema(ctx, schemaDoc); err != nil {
		t.Fatal(err)
	}
	seed(t, w, "db.password", "old-secret-1", "db.pool", "1")

	cfg, err := config.Load[sealedApp](ctx, config.WithEtcd(cli, p), config.WithKeyring(ring),
		config.WithInstance("c1", nil, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if cfg.Get().DB.Password != "old-secret-1" {
		t.Fatalf("loaded %+v", cfg.Get())
	}
	r, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: map[string]string{"db.password": "new-secret-2"}, Steps: []int{100}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	noPlain := func(what string) {
		t.Helper()
		resp, err := cli.Get(ctx, p+"/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			if bytes.Contains(kv.Value, []byte("new-secret-2")) || bytes.Contains(kv.Value, []byte("old-secret-1")) ||
				bytes.Contains(kv.Value, []byte("third-secret-3")) {
				t.Fatalf("%s: %s holds a secret in plain text", what, kv.Key)
			}
		}
	}
	noPlain("started")
	if !secret.IsSealed(r.Changes[0].Value) {
		t.Fatalf("the record's change: %+v", r.Changes)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cfg.Get().DB.Password != "new-secret-2" {
		if time.Now().After(deadline) {
			t.Fatalf("the canary runs %+v", cfg.Get())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := rollout.Promote(ctx, cli, p, r.ID); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("a promotion without the key validates the ciphertext against maxLength: %v", err)
	}
	if _, err := rollout.PromoteWith(ctx, cli, p, r.ID, opts); err != nil {
		t.Fatal(err)
	}
	noPlain("promoted")
	c, _ := content(t, writer(t, cli, p, opts...))
	if c["db/password"] != "new-secret-2" {
		t.Fatalf("after promotion the writer reads %q", c["db/password"])
	}
	time.Sleep(200 * time.Millisecond)
	if cfg.Get().DB.Password != "new-secret-2" {
		t.Fatalf("after promotion the instance runs %+v", cfg.Get())
	}

	// The controller promotes through a writer given the key.
	stop := runController(t, cli, p, rollout.WithPollInterval(20*time.Millisecond), rollout.WithWriterOptions(opts...))
	defer stop()
	r2, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: map[string]string{"db.password": "third-secret-3"}, Steps: []int{100},
		Bake: 100 * time.Millisecond}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the controller's promotion", func() bool { return get(t, cli, p).State == rollout.Promoted })
	if got := get(t, cli, p); got.ID != r2.ID || got.Reason != "" {
		t.Fatalf("after the controller: %+v", got)
	}
	noPlain("promoted by the controller")
}
