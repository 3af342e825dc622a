package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strataconf/strata/config"
)

// service is the running application: its configuration, its connection
// pool and its HTTP handlers.
type service struct {
	cfg  *config.Config[Config]
	log  *slog.Logger
	addr string // the address the HTTP server listens on

	pool       atomic.Pointer[Pool] // replaced when the db section changes
	generation atomic.Int64
	rebuilds   prometheus.Counter

	unsubscribe []func()
}

// newService subscribes to the configuration and builds the first pool.
func newService(cfg *config.Config[Config], log *slog.Logger, reg prometheus.Registerer) (*service, error) {
	s := &service{cfg: cfg, log: log,
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "service_db_pool_rebuilds_total",
			Help: "Connection pools rebuilt after a change of the db configuration."}),
	}
	if err := reg.Register(s.rebuilds); err != nil {
		return nil, err
	}

	// Rejected changes: Strata keeps the running configuration and reports
	// why, with each failing path, the key or variable it came from and the
	// rule. Secret values are already masked in these errors. (Strata also
	// logs the error itself, on the logger given to WithLogger.)
	s.unsubscribe = append(s.unsubscribe, cfg.OnError(s.configError))

	// Subscribe before building the first pool, so that no change of the
	// db section is missed between Load and here: if one arrives, it builds
	// a newer pool and the one below is dropped.
	s.unsubscribe = append(s.unsubscribe,
		config.OnChangeOf(cfg, func(c *Config) DB { return c.DB }, s.rebuildPool),
		config.OnChangeOf(cfg, serverSettingsOf, func(old, new serverSettings) {
			log.Warn("listen address or server timeouts changed; they apply at the next restart",
				"running", old, "configured", new)
		}),
	)
	p, err := NewPool(cfg.Get().DB, s.generation.Add(1))
	if err != nil {
		return nil, err
	}
	if !s.pool.CompareAndSwap(nil, p) {
		p.Close()
	}
	return s, nil
}

// configError is the OnError subscriber.
func (s *service) configError(err error) {
	var invalid *config.InvalidError
	if errors.As(err, &invalid) {
		problems := make([]string, len(invalid.Problems))
		for i, p := range invalid.Problems {
			problems[i] = p.String()
		}
		s.log.Warn("configuration change rejected; the running configuration stays",
			"revision", invalid.Revision, "problems", problems)
		return
	}
	s.log.Error("configuration error; the running configuration stays", "err", err)
}

// rebuildPool is the OnChangeOf subscriber of the db section: it runs on
// the Config's goroutine, after the new configuration is validated and
// published. Requests that hold a connection of the old pool finish on it.
func (s *service) rebuildPool(old, new DB) {
	p, err := NewPool(new, s.generation.Add(1))
	if err != nil {
		s.log.Error("db pool not rebuilt; the old one stays", "err", err)
		return
	}
	if prev := s.pool.Swap(p); prev != nil {
		prev.Close()
	}
	s.rebuilds.Inc()
	// DB.LogValue leaves the password out.
	s.log.Info("db pool rebuilt", "generation", p.generation, "db", new, "password_changed", old.Password != new.Password)
}

// close unsubscribes and closes the pool; call it after the Config is
// closed, when no subscriber can build another pool.
func (s *service) close() {
	for _, u := range s.unsubscribe {
		u()
	}
	if p := s.pool.Load(); p != nil {
		p.Close()
	}
}

// acquire takes a connection from the current pool. A pool replaced
// between loading it and acquiring from it is closed: then the new one is
// used.
func (s *service) acquire(ctx context.Context) (*Conn, *Pool, error) {
	for {
		p := s.pool.Load()
		c, err := p.Acquire(ctx)
		if errors.Is(err, ErrPoolClosed) && s.pool.Load() != p {
			continue
		}
		return c, p, err
	}
}

// handler routes the service's endpoints.
func (s *service) handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.cfg.HealthHandler()) // 200 when ok, 503 when degraded
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /v1/greeting", s.greeting)
	return mux
}

// greetingResponse is the answer of /v1/greeting.
type greetingResponse struct {
	Message  string    `json:"message"`
	Conn     int       `json:"conn"`
	Pool     PoolStats `json:"pool"`
	Revision int64     `json:"config_revision"`
}

// greeting is the application's endpoint. It reads the configuration on
// every request (Get is one atomic load), so every change applies to the
// next request.
func (s *service) greeting(w http.ResponseWriter, r *http.Request) {
	snap := s.cfg.Snapshot()
	c := snap.Value
	if c.Features.Maintenance {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.HTTP.RequestTimeout)
	defer cancel()
	actx, acancel := context.WithTimeout(ctx, c.DB.AcquireTimeout)
	conn, pool, err := s.acquire(actx)
	acancel()
	if err != nil {
		s.log.Warn("no database connection", "err", err)
		http.Error(w, "database busy", http.StatusServiceUnavailable)
		return
	}
	defer conn.Release()

	name := r.URL.Query().Get("name")
	if name == "" {
		name = "world"
	}
	if len(name) > 64 {
		name = name[:64]
	}
	msg := fmt.Sprintf("%s, %s!", c.Greeting, name)
	if c.Features.Shout {
		msg = strings.ToUpper(msg)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(greetingResponse{Message: msg, Conn: conn.ID(), Pool: pool.Stats(), Revision: snap.Revision})
}
