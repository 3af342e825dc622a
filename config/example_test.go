package config_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/secret"
)

// exampleClient returns a client of the embedded etcd the tests run, with
// nothing under prefix yet; a program would use etcd.NewClient.
func exampleClient(prefix string) *clientv3.Client {
	cli, err := shared.NewClient()
	if err != nil {
		panic(err)
	}
	if _, err := cli.Delete(context.Background(), prefix+"/", clientv3.WithPrefix()); err != nil {
		panic(err)
	}
	return cli
}

func ExampleLoad() {
	type DB struct {
		Host string `koanf:"host" validate:"required"`
		Pool int    `koanf:"pool" validate:"min=1,max=100"`
	}
	type App struct {
		Port int `koanf:"port"`
		DB   DB  `koanf:"db"`
	}
	cli := exampleClient("/example/load")
	defer cli.Close()
	ctx := context.Background()
	cli.Put(ctx, "/example/load/data/db/pool", "20") // etcdctl put

	cfg, err := config.Load[App](ctx,
		config.WithDefaults(App{Port: 8080, DB: DB{Host: "localhost", Pool: 5}}),
		config.WithEtcd(cli, "/example/load"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()
	app := cfg.Get()
	fmt.Println(app.Port, app.DB.Host, app.DB.Pool)
	fmt.Println("db.pool from", cfg.Snapshot().Origins["db.pool"])
	// Output:
	// 8080 localhost 20
	// db.pool from etcd key /example/load/data/db/pool
}

func ExampleConfig_OnChange() {
	type App struct {
		Pool int `koanf:"pool" validate:"max=100"`
	}
	cli := exampleClient("/example/onchange")
	defer cli.Close()
	ctx := context.Background()
	cfg, err := config.Load[App](ctx, config.WithEtcd(cli, "/example/onchange"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()

	done := make(chan struct{}, 2)
	cfg.OnChange(func(c config.Change[App]) {
		fmt.Printf("pool %d -> %d (paths %v)\n", c.Old.Pool, c.New.Pool, c.Paths)
		done <- struct{}{}
	})
	cfg.OnError(func(err error) {
		fmt.Println("rejected; pool stays", cfg.Get().Pool)
		done <- struct{}{}
	})
	cli.Put(ctx, "/example/onchange/data/pool", "30")
	<-done
	cli.Put(ctx, "/example/onchange/data/pool", "500") // fails max=100
	<-done
	// Output:
	// pool 0 -> 30 (paths [pool])
	// rejected; pool stays 30
}

func ExampleOnChangeOf() {
	type App struct {
		DB struct {
			Host string `koanf:"host"`
		} `koanf:"db"`
		Debug bool `koanf:"debug"`
	}
	cli := exampleClient("/example/onchangeof")
	defer cli.Close()
	ctx := context.Background()
	cfg, err := config.Load[App](ctx, config.WithEtcd(cli, "/example/onchangeof"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()
	changed := make(chan struct{})
	config.OnChangeOf(cfg, func(a *App) string { return a.DB.Host }, func(old, new string) {
		fmt.Printf("reconnect: %q -> %q\n", old, new)
		close(changed)
	})
	cli.Put(ctx, "/example/onchangeof/data/debug", "true") // not the projection: silent
	cli.Put(ctx, "/example/onchangeof/data/db/host", "db2")
	<-changed
	// Output:
	// reconnect: "" -> "db2"
}

func ExampleWriter_Update() {
	type App struct {
		Pool int `koanf:"pool" validate:"min=1,max=100"`
	}
	cli := exampleClient("/example/writer")
	defer cli.Close()
	ctx := context.Background()
	w, err := config.NewWriter[App](cli, "/example/writer", config.WithWriterDefaults(App{Pool: 5}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close() // stops the watch a writer keeps from its second write on

	rel, err := w.Update(ctx, func(a *App) error { a.Pool = 20; return nil },
		config.Author("ops"), config.Message("raise pool"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("release", rel.Version, rel.Changes[0].Key, rel.Changes[0].New)

	_, err = w.Update(ctx, func(a *App) error { a.Pool = 1000; return nil })
	fmt.Println(err)

	_, err = w.Replace(ctx, &App{Pool: 30}, config.ExpectVersion(0))
	fmt.Println(err)

	w.Replace(ctx, &App{Pool: 40}, config.ExpectVersion(1), config.Author("ci"))
	w.Rollback(ctx, 1, config.Author("oncall"))
	hist, _ := w.History(ctx, 10)
	for _, h := range hist {
		fmt.Println(h.Version, h.Author, h.Message, h.Time.Before(time.Now()))
	}
	v, version, _, _ := w.Get(ctx)
	fmt.Println("pool", v.Pool, "at version", version)
	// Output:
	// release 1 pool 20
	// invalid configuration: pool (etcd key /example/writer/data/pool): failed max=100 (value 1000)
	// version conflict: expected version 0, current version is 1
	// 3 oncall rollback to release 1 true
	// 2 ci  true
	// 1 ops raise pool true
	// pool 20 at version 3
}

// A writer with a keyring stores a secret sealed; a Config with the same
// keyring reads it in clear.
func ExampleWithKeyring() {
	type App struct {
		Password string `koanf:"password" secret:"true"`
	}
	cli := exampleClient("/example/keyring")
	defer cli.Close()
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	keys := filepath.Join(dir, "keys.json")
	if _, err := secret.GenerateKeyFile(keys); err != nil { // strata secrets keygen keys.json
		panic(err)
	}
	ring := config.KeyFile(keys)

	w, err := config.NewWriter[App](cli, "/example/keyring", config.WithWriterKeyring(ring))
	if err != nil {
		panic(err)
	}
	defer w.Close()
	if _, err := w.Update(ctx, func(a *App) error { a.Password = "correct horse"; return nil }); err != nil {
		panic(err)
	}
	stored, _ := cli.Get(ctx, "/example/keyring/data/password")
	fmt.Println("etcd holds a sealed value:", secret.IsSealed(string(stored.Kvs[0].Value)))

	cfg, err := config.Load[App](ctx, config.WithEtcd(cli, "/example/keyring"), config.WithKeyring(ring))
	if err != nil {
		panic(err)
	}
	defer cfg.Close()
	fmt.Println("the application reads:", cfg.Get().Password)
	// Output:
	// etcd holds a sealed value: true
	// the application reads: correct horse
}
