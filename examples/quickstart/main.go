// Command quickstart shows Strata end to end with nothing installed: it
// starts an embedded etcd on a loopback port, writes a few keys the way
// `etcdctl put` would, loads a typed struct over a file and environment
// variables, prints it with the etcd revision and where each value came
// from, and shows the error a bad value produces.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// App is the application's configuration.
type App struct {
	Name string `koanf:"name" validate:"required"`
	Port int    `koanf:"port" validate:"min=1,max=65535"`
	DB   struct {
		Host     string        `koanf:"host" validate:"required,hostname"`
		Port     int           `koanf:"port" validate:"min=1,max=65535"`
		Pool     int           `koanf:"pool" validate:"min=1,max=100"`
		Timeout  time.Duration `koanf:"timeout"`
		Password string        `koanf:"password" secret:"true"`
	} `koanf:"db"`
	Features []string `koanf:"features"`
}

const prefix = "/strata/quickstart/dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	fmt.Println("starting an embedded etcd on loopback ...")
	etcd, err := etcdtest.Start(ctx, 1)
	if err != nil {
		return err
	}
	defer etcd.Close()
	cli, err := etcdprov.NewClient(etcdprov.ClientConfig{Endpoints: etcd.Endpoints()})
	if err != nil {
		return err
	}
	defer cli.Close()
	fmt.Println("etcd at", etcd.Endpoints())

	// What an operator would do with etcdctl put.
	for k, v := range map[string]string{
		"db/host":     "db.internal",
		"db/pool":     "20",
		"db/timeout":  "15s",
		"db/password": "s3cr3t",
		"features":    `["search","export"]`,
	} {
		if _, err := cli.Put(ctx, prefix+"/data/"+k, v); err != nil {
			return err
		}
	}

	// A file with the application's own defaults.
	dir, err := os.MkdirTemp("", "strata-quickstart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "app.yaml")
	if err := os.WriteFile(file, []byte("name: quickstart\nport: 8080\ndb:\n  host: localhost\n  port: 5432\n  pool: 5\n"), 0o644); err != nil {
		return err
	}
	// And an environment variable, as a deployment would set it.
	os.Setenv("QUICKSTART_PORT", "9090")

	quiet := slog.New(slog.DiscardHandler) // OnError below reports rejections
	cfg, err := config.Load[App](ctx,
		config.WithFile(file),
		config.WithEnv("QUICKSTART_"),
		config.WithEtcd(cli, prefix),
		config.WithLogger(quiet),
	)
	if err != nil {
		return err
	}
	defer cfg.Close()

	snap := cfg.Snapshot()
	app := cfg.Get()
	fmt.Printf("\nloaded %s at etcd revision %d: name=%s port=%d db=%s:%d pool=%d timeout=%s features=%v\n\n",
		prefix, snap.Revision, app.Name, app.Port, app.DB.Host, app.DB.Port, app.DB.Pool, app.DB.Timeout, app.Features)
	values := snap.Values()
	paths := make([]string, 0, len(values))
	for p := range values {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Printf("  %-12s = %-22v from %s\n", p, values[p], snap.Origins[p])
	}

	// Hot reload: subscribers see every applied change; a bad value is
	// rejected and the last good configuration stays in force.
	changes := make(chan config.Change[App], 1)
	rejected := make(chan error, 1)
	cfg.OnChange(func(c config.Change[App]) { changes <- c })
	cfg.OnError(func(err error) { rejected <- err })

	if _, err := cli.Put(ctx, prefix+"/data/db/pool", "30"); err != nil {
		return err
	}
	select {
	case c := <-changes:
		fmt.Printf("\nafter `etcdctl put %s/data/db/pool 30`:\n  change at revision %d, paths %v, pool %d -> %d\n",
			prefix, c.Revision, c.Paths, c.Old.DB.Pool, c.New.DB.Pool)
	case <-ctx.Done():
		return ctx.Err()
	}

	if _, err := cli.Put(ctx, prefix+"/data/db/pool", "500"); err != nil {
		return err
	}
	select {
	case err := <-rejected:
		fmt.Printf("\nafter `etcdctl put %s/data/db/pool 500`:\n  rejected: %v\n  Get().DB.Pool is still %d\n", prefix, err, cfg.Get().DB.Pool)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
