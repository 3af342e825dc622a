package rollout_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
)

// A rollout of db.pool=20 in two steps of 100 ms each, driven to its
// promotion by a controller. A program would take its client from
// etcd.NewClient, and run the controller for its whole life (or as
// `strata rollout run`).
func Example() {
	ctx := context.Background()
	cli, err := shared.NewClient() // the embedded etcd of these tests
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	const prefix = "/example/rollout"
	cli.Delete(ctx, prefix+"/", clientv3.WithPrefix())
	w, _ := config.NewRawWriter(cli, prefix)
	w.Set(ctx, "db.pool", "10")

	r, err := rollout.Start(ctx, cli, prefix, rollout.Spec{
		Set:   map[string]string{"db.pool": "20"},
		Steps: []int{50, 100}, Bake: 100 * time.Millisecond,
		Author: "ops", Message: "bigger pool",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.State, r.Steps, "from version", r.Base)

	// The controller: elected, it advances the steps and promotes.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rollout.Run(runCtx, cli, prefix, rollout.WithPollInterval(20*time.Millisecond)) }()
	for deadline := time.Now().Add(10 * time.Second); r.State.Active() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if r, err = rollout.Get(ctx, cli, prefix); err != nil {
			fmt.Println(err)
			break
		}
	}
	stop()
	<-done

	fmt.Println(r.State, "as release", r.Release)
	hist, _ := w.History(ctx, 1)
	fmt.Println(hist[0].Author, "-", strings.ReplaceAll(hist[0].Message, r.ID, "<id>"))
	// Output:
	// running [50 100] from version 1
	// promoted as release 2
	// ops - rollout <id>: bigger pool
}
