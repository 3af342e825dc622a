package main

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

// rolesApp is the configuration of the application in TestRolesLeastPrivilege.
type rolesApp struct {
	DB struct {
		Host     string `koanf:"host"`
		Password string `koanf:"password" secret:"true"`
	} `koanf:"db"`
}

const rolesSchema = `{
  "type": "object",
  "properties": {
    "db": {
      "type": "object",
      "properties": {
        "host": {"type": "string"},
        "password": {"type": "string", "x-secret": true}
      }
    }
  }
}`

// TestRolesLeastPrivilege runs, on a cluster with TLS (client certificates
// required) and auth, the roles strata roles create makes, each bound to a
// user: the operator writes (sealing the secret with a key file); the
// application loads (opening it), follows a change, keeps its instance
// record, but cannot write P/data/ nor read another prefix, nor publish its
// schema until the role is re-created with --app-publishes-schema; the
// auditor runs history, get and status, and sees the secret masked.
func TestRolesLeastPrivilege(t *testing.T) {
	t.Parallel()
	certs, err := etcdtest.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := etcdtest.New(t, etcdtest.WithTLS(certs), etcdtest.WithAuth("root-pw"))
	const prefix = "/strata/payments/prod"
	var eps []string
	for _, ep := range c.Endpoints() {
		eps = append(eps, strings.TrimPrefix(ep, "https://"))
	}
	as := func(user string, args ...string) []string {
		return append([]string{"--endpoints", strings.Join(eps, ","), "--prefix", prefix, "--dial-timeout", "5s",
			"--cacert", certs.CACert, "--cert", certs.ClientCert, "--key", certs.ClientKey, "--user", user}, args...)
	}
	mustRun := func(what string, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, code, out, errOut)
		}
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The roles, created by root, and one user bound to each.
	out := mustRun("roles create", as("root:root-pw", "roles", "create")...)
	for _, want := range []string{"role strata-payments-prod-app (created)", "role strata-payments-prod-operator (created)",
		"role strata-payments-prod-auditor (created)"} {
		if !strings.Contains(out, want) {
			t.Errorf("roles create: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "not enabled") {
		t.Errorf("roles create: says auth is not enabled:\n%s", out)
	}
	root := c.Client(t)
	for _, u := range []string{"app", "operator", "auditor"} {
		if _, err := root.UserAdd(ctx, u, u+"-pw"); err != nil {
			t.Fatal(err)
		}
		if _, err := root.UserGrantRole(ctx, u, "strata-payments-prod-"+u); err != nil {
			t.Fatal(err)
		}
	}

	// The operator publishes the schema and writes, sealing the secret.
	keys := filepath.Join(t.TempDir(), "keys.json")
	mustRun("keygen", "secrets", "keygen", keys)
	schemaFile := writeFile(t, "app.schema.json", rolesSchema)
	doc := writeFile(t, "app.yaml", "db:\n  host: h1\n  password: hunter2-long\n")
	mustRun("operator schema publish", as("operator:operator-pw", "schema", "publish", "-f", schemaFile)...)
	mustRun("operator push", as("operator:operator-pw", "--key-file", keys, "push", "-f", doc)...)
	resp, err := root.Get(ctx, prefix+"/data/db/password")
	if err != nil || len(resp.Kvs) != 1 || !strings.HasPrefix(string(resp.Kvs[0].Value), "strata:enc:v1:") {
		t.Fatalf("the password in etcd: %v, %v; want an envelope", resp, err)
	}

	// The application loads, opening the secret, and keeps its record.
	appCli := c.ClientAs(t, "app", "app-pw")
	cfg, err := config.Load[rolesApp](ctx, config.WithEtcd(appCli, prefix),
		config.WithInstance("app-1", map[string]string{"zone": "a"}, 0),
		config.WithKeyring(config.KeyFile(keys)))
	if err != nil {
		t.Fatalf("app load: %v", err)
	}
	defer cfg.Close()
	if got := cfg.Get().DB; got.Host != "h1" || got.Password != "hunter2-long" {
		t.Fatalf("app loaded host %q, password opened: %v", got.Host, got.Password == "hunter2-long")
	}
	waitFor(t, "the instance record", func() bool {
		resp, err := root.Get(ctx, prefix+"/meta/instances/app-1")
		return err == nil && len(resp.Kvs) == 1
	})

	// It follows a change the operator makes.
	mustRun("operator set", as("operator:operator-pw", "--key-file", keys, "set", "db.host", "h2")...)
	waitFor(t, "the app to apply db.host h2", func() bool { return cfg.Get().DB.Host == "h2" })

	// It can neither write the data, nor read another prefix, nor publish
	// its schema.
	_, err = appCli.Put(ctx, prefix+"/data/x", "1")
	expectDenied(t, "app put "+prefix+"/data/x", err)
	_, err = appCli.Get(ctx, "/strata/other/data/x")
	expectDenied(t, "app get /strata/other/data/x", err)
	_, err = appCli.Get(ctx, prefix+"/meta/releases/", clientv3.WithPrefix())
	expectDenied(t, "app get the release records", err)
	_, err = config.Load[rolesApp](ctx, config.WithEtcd(appCli, prefix), config.WithKeyring(config.KeyFile(keys)),
		config.WithPublishSchema())
	expectDenied(t, "app load with WithPublishSchema", err)

	// The auditor reads history, the config (secret masked) and status.
	auditor := func(args ...string) []string { return as("auditor:auditor-pw", args...) }
	out = mustRun("auditor history", auditor("history")...)
	if n := strings.Count(out, "\n"); n != 4 { // header, schema, push, set
		t.Errorf("auditor history: %d lines, want 4:\n%s", n, out)
	}
	out = mustRun("auditor get", auditor("get")...)
	if !strings.Contains(out, "password: '******'") || strings.Contains(out, "hunter2") || !strings.Contains(out, "host: h2") {
		t.Errorf("auditor get: want the password masked and host h2:\n%s", out)
	}
	out = mustRun("auditor status", auditor("status")...)
	if !strings.Contains(out, "app-1") {
		t.Errorf("auditor status: app-1 not listed:\n%s", out)
	}
	code, _, errOut := runCLI(t, "", auditor("set", "db.host", "h3")...)
	if code != exitError || !strings.Contains(errOut, "permission denied") {
		t.Errorf("auditor set: exit %d, stderr %q; want 1, permission denied", code, errOut)
	}
	code, _, errOut = runCLI(t, "", as("operator:operator-pw", "--prefix", "/strata/other", "get")...)
	if code != exitError || !strings.Contains(errOut, "permission denied") {
		t.Errorf("operator get of another prefix: exit %d, stderr %q; want 1, permission denied", code, errOut)
	}

	// Re-created with --app-publishes-schema, the roles exist and the
	// application's role may write P/meta/schema; an extra permission
	// given by hand is kept and listed.
	if _, err := root.RoleGrantPermission(ctx, "strata-payments-prod-auditor", "/audit/", clientv3.GetPrefixRangeEnd("/audit/"),
		clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	out = mustRun("roles create again", as("root:root-pw", "roles", "create", "--app-publishes-schema")...)
	for _, want := range []string{`role strata-payments-prod-app \(exists\)`, `(?m)^  read-write  /strata/payments/prod/meta/schema +changed from read$`,
		`(?m)^  read-write  /strata/payments/prod/ +prefix  held$`, `(?m)^  read +/audit/ +prefix  extra \(kept\)$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("roles create again: no %q in\n%s", want, out)
		}
	}
	cfg2, err := config.Load[rolesApp](ctx, config.WithEtcd(appCli, prefix), config.WithKeyring(config.KeyFile(keys)),
		config.WithPublishSchema())
	if err != nil {
		t.Fatalf("app load with WithPublishSchema after --app-publishes-schema: %v", err)
	}
	cfg2.Close()
	_, err = appCli.Put(ctx, prefix+"/data/x", "1")
	expectDenied(t, "app put "+prefix+"/data/x after --app-publishes-schema", err)
}

// expectDenied fails the test unless err is etcd's permission denied.
func expectDenied(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, rpctypes.ErrPermissionDenied) && (err == nil || !strings.Contains(err.Error(), "permission denied")) {
		t.Errorf("%s: %v, want permission denied", what, err)
	}
}
