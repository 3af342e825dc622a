package config_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/schema"
)

// Level is a TextUnmarshaler field type.
type Level int

func (l *Level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "debug":
		*l = 0
	case "info":
		*l = 1
	case "error":
		*l = 2
	default:
		return fmt.Errorf("unknown level %q", b)
	}
	return nil
}

func (l Level) MarshalText() ([]byte, error) {
	return []byte([...]string{"debug", "info", "error"}[l]), nil
}

type DB struct {
	Host     string        `koanf:"host" validate:"required,hostname"`
	Port     int           `koanf:"port" validate:"min=1,max=65535"`
	Password string        `koanf:"password" secret:"true"`
	Timeout  time.Duration `koanf:"timeout"`
	Replicas []string      `koanf:"replicas"`
}

type App struct {
	Name    string            `koanf:"name" validate:"required"`
	Port    int               `koanf:"port" validate:"min=1,max=65535"`
	Mode    string            `koanf:"mode"`
	Debug   bool              `koanf:"debug"`
	Ratio   float64           `koanf:"ratio"`
	DB      DB                `koanf:"db"`
	Tags    []string          `koanf:"tags"`
	Labels  map[string]string `koanf:"labels"`
	Level   Level             `koanf:"level"`
	Addr    net.IP            `koanf:"addr"`
	Retries *int              `koanf:"retries"`
}

func defaults() App {
	return App{Name: "svc", Port: 8080, Mode: "defaults", DB: DB{Host: "localhost", Port: 5432, Timeout: time.Second}}
}

func TestLoadBindsEveryKind(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "port", "9090")
	put(t, cli, p, "debug", "true")
	put(t, cli, p, "ratio", "0.25")
	put(t, cli, p, "db/host", "db.internal")
	put(t, cli, p, "db/timeout", "15s")
	put(t, cli, p, "db/replicas", `["r1","r2"]`)
	put(t, cli, p, "tags/0", "a")
	put(t, cli, p, "tags/1", "b")
	put(t, cli, p, "labels/team", "payments")
	put(t, cli, p, "level", "error")
	put(t, cli, p, "addr", "10.0.0.7")
	put(t, cli, p, "retries", "3")
	put(t, cli, p, "labels.yaml", "tier: gold\nteam: overridden-by-leaf\n")

	cfg, err := config.Load[App](context.Background(), config.WithDefaults(defaults()), config.WithEtcd(cli, p), config.WithWatch(false, false))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	got := cfg.Get()
	three := 3
	want := App{Name: "svc", Port: 9090, Mode: "defaults", Debug: true, Ratio: 0.25,
		DB:     DB{Host: "db.internal", Port: 5432, Timeout: 15 * time.Second, Replicas: []string{"r1", "r2"}},
		Tags:   []string{"a", "b"},
		Labels: map[string]string{"team": "payments", "tier": "gold"},
		Level:  2, Addr: net.ParseIP("10.0.0.7"), Retries: &three}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("bound\n got %+v\nwant %+v", *got, want)
	}
	snap := cfg.Snapshot()
	if snap.Revision == 0 {
		t.Fatal("snapshot has no revision")
	}
	for path, want := range map[string]config.Origin{
		"port":        {Layer: config.LayerEtcd, Key: p + "/data/port"},
		"labels.tier": {Layer: config.LayerEtcd, Key: p + "/data/labels.yaml"},
		"labels.team": {Layer: config.LayerEtcd, Key: p + "/data/labels/team"},
		"name":        {Layer: config.LayerDefaults},
	} {
		if got := snap.Origins[path]; got != want {
			t.Errorf("origin of %s = %v, want %v", path, got, want)
		}
	}
}

// TestPrecedence covers every combination of layers holding one key.
func TestPrecedence(t *testing.T) {
	layers := []config.Layer{config.LayerDefaults, config.LayerFile, config.LayerEnv, config.LayerEtcd}
	value := map[config.Layer]string{
		config.LayerDefaults: "from-defaults", config.LayerFile: "from-file",
		config.LayerEnv: "from-env", config.LayerEtcd: "from-etcd",
	}
	cli := client(t)
	for mask := 0; mask < 1<<len(layers); mask++ {
		var holding []string
		for i, l := range layers {
			if mask&(1<<i) != 0 {
				holding = append(holding, string(l))
			}
		}
		name := "none"
		if len(holding) > 0 {
			name = strings.Join(holding, "+")
		}
		t.Run(name, func(t *testing.T) {
			p := prefix(t)
			d := defaults()
			d.Mode = ""
			file := "port: 8081\n"
			var env []string
			want, wantLayer := "", config.Layer("")
			for i, l := range layers {
				if mask&(1<<i) == 0 {
					continue
				}
				want, wantLayer = value[l], l
				switch l {
				case config.LayerDefaults:
					d.Mode = value[l]
				case config.LayerFile:
					file += "mode: " + value[l] + "\n"
				case config.LayerEnv:
					env = append(env, "APP_MODE="+value[l])
				case config.LayerEtcd:
					put(t, cli, p, "mode", value[l])
				}
			}
			cfg, err := config.Load[App](context.Background(),
				config.WithDefaults(d),
				config.WithFile(writeFile(t, "app.yaml", file)),
				config.WithEnv("APP_"), config.WithEnviron(environ(env...)),
				config.WithEtcd(cli, p), config.WithWatch(false, false))
			if err != nil {
				t.Fatal(err)
			}
			defer cfg.Close()
			if got := cfg.Get().Mode; got != want {
				t.Fatalf("mode = %q, want %q", got, want)
			}
			if got := cfg.Snapshot().Origins["mode"].Layer; got != wantLayer && want != "" {
				t.Fatalf("origin layer = %q, want %q", got, wantLayer)
			}
			if cfg.Get().Port != 8081 {
				t.Fatalf("file value lost: port = %d", cfg.Get().Port)
			}
		})
	}
}

func TestOrderOption(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "mode", "from-etcd")
	cfg, err := config.Load[App](context.Background(),
		config.WithDefaults(defaults()),
		config.WithEnv("APP_"), config.WithEnviron(environ("APP_MODE=from-env")),
		config.WithEtcd(cli, p),
		config.WithOrder(config.LayerDefaults, config.LayerEtcd, config.LayerEnv), config.WithWatch(false, false))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if got := cfg.Get().Mode; got != "from-env" {
		t.Fatalf("env after etcd: mode = %q", got)
	}
	_, err = config.Load[App](context.Background(), config.WithDefaults(defaults()), config.WithEtcd(cli, p),
		config.WithOrder(config.LayerDefaults))
	if err == nil || !strings.Contains(err.Error(), `"etcd"`) {
		t.Fatalf("order without a configured layer: %v", err)
	}
}

// TestDeletedKeyFallsBack: a key deleted from etcd falls back to the layer
// below it, never to a stale value.
func TestDeletedKeyFallsBack(t *testing.T) {
	cli := client(t)
	for _, below := range []string{"file", "env", "defaults"} {
		t.Run(below, func(t *testing.T) {
			p := prefix(t)
			put(t, cli, p, "mode", "from-etcd")
			opts := []config.Option{config.WithDefaults(defaults()), config.WithEtcd(cli, p), config.WithWatch(false, false)}
			want := "defaults"
			switch below {
			case "file":
				opts = append(opts, config.WithFile(writeFile(t, "a.json", `{"mode": "from-file"}`)))
				want = "from-file"
			case "env":
				opts = append(opts, config.WithEnv("APP_"), config.WithEnviron(environ("APP_MODE=from-env")))
				want = "from-env"
			}
			load := func() *config.Config[App] {
				cfg, err := config.Load[App](context.Background(), opts...)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { cfg.Close() })
				return cfg
			}
			if got := load().Get().Mode; got != "from-etcd" {
				t.Fatalf("before delete: %q", got)
			}
			del(t, cli, p, "mode")
			if got := load().Get().Mode; got != want {
				t.Fatalf("after delete: mode = %q, want %q", got, want)
			}
		})
	}
}

func TestWrongTypeNamesPathAndKey(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "port", "abc")
	put(t, cli, p, "db/timeout", "soon")
	_, err := config.Load[App](context.Background(), config.WithDefaults(defaults()), config.WithEtcd(cli, p))
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	var ie *config.InvalidError
	if !errors.As(err, &ie) || len(ie.Problems) != 2 {
		t.Fatalf("want an InvalidError with 2 problems, got %v", err)
	}
	var be *codec.BindError
	if !errors.As(err, &be) {
		t.Fatalf("the codec.BindError is not reachable: %v", err)
	}
	msg := err.Error()
	for _, s := range []string{"port (etcd key " + p + "/data/port)", `"abc"`, "db.timeout (etcd key " + p + "/data/db/timeout)"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not contain %q", msg, s)
		}
	}
}

func TestValidationNamesPathAndRule(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "db/port", "70000")
	put(t, cli, p, "db/password", "hunter2")
	put(t, cli, p, "name", "")
	_, err := config.Load[App](context.Background(), config.WithDefaults(defaults()), config.WithEtcd(cli, p))
	var ve *schema.ValidationError
	if !errors.Is(err, config.ErrInvalid) || !errors.As(err, &ve) {
		t.Fatalf("err = %v, want ErrInvalid wrapping a ValidationError", err)
	}
	msg := err.Error()
	for _, s := range []string{"db.port (etcd key " + p + "/data/db/port): failed max=65535 (value 70000)", "name", "required"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not contain %q", msg, s)
		}
	}
}

func TestSecretNeverInErrors(t *testing.T) {
	type S struct {
		Token time.Duration `koanf:"token" secret:"true"`
		Key   string        `koanf:"key" secret:"true" validate:"len=4"`
	}
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "token", "s3cr3t-token")
	_, err := config.Load[S](context.Background(), config.WithEtcd(cli, p))
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("bind error leaks or is missing: %v", err)
	}
	del(t, cli, p, "token")
	put(t, cli, p, "key", "s3cr3t-key")
	_, err = config.Load[S](context.Background(), config.WithEtcd(cli, p))
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "key") {
		t.Fatalf("validation error leaks or is missing: %v", err)
	}
}

func TestMalformedDocuments(t *testing.T) {
	cli := client(t)
	cases := []struct {
		name, content, line string
	}{
		{"app.yaml", "name: a\nport: 1\n  bad: indent\n", "line 3"},
		{"app.json", "{\n\"name\": \"a\"\n\"port\": 1}\n", "line 3"},
		{"app.toml", "name = \"a\"\nport = 1\n\nmode = = 2\n", "line 4"},
	}
	for _, tc := range cases {
		t.Run("file/"+tc.name, func(t *testing.T) {
			path := writeFile(t, tc.name, tc.content)
			_, err := config.Load[App](context.Background(), config.WithFile(path))
			if !errors.Is(err, config.ErrSource) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.line) {
				t.Fatalf("err = %v, want ErrSource naming %s and %s", err, path, tc.line)
			}
			var se *codec.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("no SyntaxError in %v", err)
			}
		})
		t.Run("etcd/"+tc.name, func(t *testing.T) {
			p := prefix(t)
			put(t, cli, p, tc.name, tc.content)
			_, err := config.Load[App](context.Background(), config.WithEtcd(cli, p))
			key := p + "/data/" + tc.name
			if !errors.Is(err, config.ErrSource) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), tc.line) {
				t.Fatalf("err = %v, want ErrSource naming %s and %s", err, key, tc.line)
			}
		})
	}
}

func TestKeyOutsideLayout(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "db//port", "1")
	_, err := config.Load[App](context.Background(), config.WithEtcd(cli, p))
	if !errors.Is(err, config.ErrSource) || !strings.Contains(err.Error(), p+"/data/db//port") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownKeys(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "db/extra", "1")
	put(t, cli, p, "nosuch", "x")

	cfg, err := config.Load[App](context.Background(), config.WithDefaults(defaults()), config.WithEtcd(cli, p), config.WithWatch(false, false))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Close()
	if got := strings.Join(cfg.Snapshot().Unknown, ","); got != "db.extra,nosuch" {
		t.Fatalf("unknown = %q", got)
	}
	_, err = config.Load[App](context.Background(), config.WithDefaults(defaults()), config.WithEtcd(cli, p), config.WithUnknownKeys(config.UnknownFail))
	if !errors.Is(err, config.ErrUnknownKeys) || !strings.Contains(err.Error(), "db.extra (etcd key "+p+"/data/db/extra)") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnreachableEtcdNamesEndpoints(t *testing.T) {
	// A listener that accepts nothing: nobody serves on this port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = config.Load[App](ctx, config.WithDefaults(defaults()), config.WithEtcd(cli, "/x"))
	if !errors.Is(err, config.ErrSource) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("err = %v, want ErrSource naming %s", err, addr)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("Load took %v with a 700ms context", waited)
	}
}

func TestLoadRejectsBadDefaults(t *testing.T) {
	_, err := config.Load[App](context.Background(), config.WithDefaults(DB{}))
	if err == nil || !strings.Contains(err.Error(), "WithDefaults") {
		t.Fatalf("err = %v", err)
	}
	_, err = config.Load[int](context.Background())
	if err == nil {
		t.Fatal("Load[int] succeeded")
	}
}
