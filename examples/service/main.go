// Command service is an HTTP service configured with Strata, written to be
// copied: a typed configuration loaded from four layers and validated, a
// connection pool rebuilt when its settings change in etcd, rejected
// changes logged without secrets, health and Prometheus metrics, and a
// clean shutdown.
//
// Run it from the repository's root; without -etcd it starts an embedded
// etcd on a loopback port, so nothing needs to be installed:
//
//	go run ./examples/service
//	curl -s 'localhost:8080/v1/greeting?name=Ada'
//	curl -s localhost:8080/healthz
//	curl -s localhost:8080/metrics | grep ^strata_
//
// It prints the embedded etcd's endpoint and a command that changes the
// pool size, which rebuilds the pool. strata refuses db.pool_size 500 by
// the published schema; written around that check (strata set
// --no-validate, etcdctl put), it reaches the service, which rejects and
// logs it while the running configuration stays. Ctrl-C or SIGTERM stops it: the HTTP server drains,
// then the Config, the pool and the etcd client are closed. (`go run` does
// not pass SIGTERM on to the program: send it to the service's own process,
// or build the binary with go build.)
//
// Against a real etcd (the data of the embedded one is gone on exit):
//
//	go run ./examples/service -etcd 127.0.0.1:2379 -prefix /strata/service/prod
//	STRATA_ENDPOINTS=127.0.0.1:2379 go run ./examples/service
//
// The configuration (type Config) comes from, lowest first: the defaults
// in config.go (config.WithDefaults); service.yaml (config.WithFile; -config
// names another file); SERVICE_* environment variables (config.WithEnv:
// SERVICE_LISTEN=127.0.0.1:9000, SERVICE_DB__PASSWORD=...,
// SERVICE_DB__POOL_SIZE=20); and the keys under PREFIX/data in etcd
// (config.WithEtcd: PREFIX/data/db/pool_size holds "20"). The service
// publishes its JSON Schema at PREFIX/meta/schema, so the strata CLI
// checks every change against the same rules.
//
// The embedded mode uses this module's internal/etcdtest; a copy outside
// the module drops startEmbeddedEtcd and always needs -etcd.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(2)
	}
	o.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(o.log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	if err != nil {
		o.log.Error("service failed", "err", err)
		os.Exit(1)
	}
	o.log.Info("stopped cleanly")
}

// options are what run needs besides the configuration itself; main takes
// them from the command line, tests set them directly.
type options struct {
	endpoints []string        // etcd endpoints; none: start an embedded etcd
	prefix    string          // the configuration's key prefix in etcd
	file      string          // the YAML file layer
	environ   func() []string // the environment; nil: os.Environ
	log       *slog.Logger
	ready     func(*service) // called once the HTTP server listens (tests)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoints := fs.String("etcd", os.Getenv("STRATA_ENDPOINTS"),
		"comma-separated etcd endpoints, e.g. 127.0.0.1:2379 (default $STRATA_ENDPOINTS; empty: start an embedded etcd)")
	fs.StringVar(&o.prefix, "prefix", envOr("STRATA_PREFIX", "/strata/service/dev"), "the configuration's key prefix in etcd (default $STRATA_PREFIX)")
	fs.StringVar(&o.file, "config", "", "the YAML configuration file (default: service.yaml or examples/service/service.yaml, whichever exists)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, ep := range strings.Split(*endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			o.endpoints = append(o.endpoints, ep)
		}
	}
	if o.file == "" {
		o.file = "examples/service/service.yaml"
		if _, err := os.Stat("service.yaml"); err == nil {
			o.file = "service.yaml"
		}
	}
	return o, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// run is the service: it returns when ctx ends (nil after a clean shutdown)
// or when it cannot start or serve.
func run(ctx context.Context, o options) (err error) {
	log := o.log
	if log == nil {
		log = slog.Default()
	}

	endpoints := o.endpoints
	if len(endpoints) == 0 {
		etcd, err := startEmbeddedEtcd(ctx, log)
		if err != nil {
			return err
		}
		defer etcd.Close()
		endpoints = etcd.Endpoints()
		log.Info("embedded etcd started (its data is gone on exit; -etcd for a real one); change the pool with",
			"command", fmt.Sprintf("go run ./cmd/strata --endpoints %s --prefix %s set db.pool_size 20", strings.Join(endpoints, ","), o.prefix))
	}
	cli, err := etcdprov.NewClient(etcdprov.ClientConfig{Endpoints: endpoints})
	if err != nil {
		return err
	}
	defer cli.Close() // after cfg.Close: the Config uses the client until then

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	opts := []config.Option{
		config.WithDefaults(defaults),
		config.WithFile(o.file),
		config.WithEnv("SERVICE_"),
		config.WithEtcd(cli, o.prefix),
		config.WithPublishSchema(),
		config.WithMetrics(reg),
		config.WithLogger(log.With("component", "strata")),
	}
	if o.environ != nil {
		opts = append(opts, config.WithEnviron(o.environ))
	}
	loadCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cfg, err := config.Load[Config](loadCtx, opts...)
	cancel()
	if err != nil {
		return err // names the key, file or variable and the rule
	}
	s, err := newService(cfg, log, reg)
	if err != nil {
		cfg.Close()
		return err
	}
	// Config first: no subscriber runs after Close returns, so no pool is
	// built after s.close. (Both may be called twice.)
	defer func() { cfg.Close(); s.close() }()

	c := cfg.Get()
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen (config path listen): %w", err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{
		Handler:           s.handler(reg),
		ReadHeaderTimeout: c.HTTP.ReadHeaderTimeout,
		IdleTimeout:       c.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "addr", "http://"+s.addr, "prefix", o.prefix, "revision", cfg.Snapshot().Revision, "db", c.DB)
	if o.ready != nil {
		o.ready(s)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	}

	// Stop taking requests and let those in flight finish, then stop the
	// configuration (no subscriber runs after Close returns), then close
	// the pool; the etcd client and the embedded etcd go last (defers).
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Get().HTTP.ShutdownTimeout)
	defer cancel()
	if err = srv.Shutdown(sctx); err != nil {
		srv.Close() // the deadline passed: drop the connections left
		err = fmt.Errorf("http shutdown: %w", err)
	}
	<-served // http.ErrServerClosed
	cfg.Close()
	s.close()
	return err
}

// startEmbeddedEtcd starts a one-member etcd on loopback for a run with
// nothing installed.
func startEmbeddedEtcd(ctx context.Context, log *slog.Logger) (*etcdtest.Cluster, error) {
	log.Info("no -etcd given: starting an embedded etcd on loopback")
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return etcdtest.Start(ctx, 1)
}
