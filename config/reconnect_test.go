package config_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

// Defect: clientv3 re-opens a watch stream by itself when the member it is
// connected to restarts, so the reconnect showed neither in
// strata_watch_reconnects_total nor in Health().Etcd.
func TestMemberRestartCountsAReconnect(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	p := "/strata/reconnect"
	put(t, cli, p, "pool", "1")
	reg := prometheus.NewRegistry()
	cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p), config.WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)
	if h := cfg.Health(); h.Etcd.Reconnects != 0 {
		t.Fatalf("reconnects before the restart: %+v", *h.Etcd)
	}
	// A change seen through the watch: its stream is open now.
	put(t, cli, p, "pool", "3")
	r.wait(t, "a change before the restart", func(ch []config.Change[Ops], _ []error) bool { return len(ch) == 1 })

	c.Members[0].Stop(t)
	c.Members[0].Restart(t)
	put(t, c.Client(t), p, "pool", "2")
	r.wait(t, "the change after the restart", func(ch []config.Change[Ops], _ []error) bool { return len(ch) == 2 })
	waitFor(t, "the reconnect in Health", func() bool { return cfg.Health().Etcd.Reconnects >= 1 })
	n := cfg.Health().Etcd.Reconnects
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "strata_watch_reconnects_total" {
			found = true
			if got := mf.GetMetric()[0].GetCounter().GetValue(); got != float64(n) {
				t.Fatalf("strata_watch_reconnects_total = %v, Health says %d", got, n)
			}
		}
	}
	if !found {
		t.Fatal("no strata_watch_reconnects_total")
	}
	if h := cfg.Health(); h.Status != "ok" || h.Etcd.LastError == "" {
		t.Fatalf("health after the reconnect: %+v %+v", h, *h.Etcd)
	}
}
