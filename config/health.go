package config

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Health is the state of a Config, for load balancers and operators.
type Health struct {
	// Status is "ok" or "degraded". Degraded means one of: the Config
	// started from the snapshot file and no content read from etcd is in
	// force yet (etcd not reached, or everything it held since was
	// rejected); or the etcd watch is down (its stream failed, or the
	// client's connection is down). A rejected candidate alone does not
	// degrade: the last good configuration stays in force and LastError
	// says why. HealthHandler of a nil Config answers "not loaded".
	Status string `json:"status"`
	// Reason says why the status is degraded.
	Reason string `json:"reason,omitempty"`
	// Revision and Version are the etcd revision and release version of
	// the configuration in force. The version is tracked from the first
	// call of Health on (from Load on with WithInstance, WithSnapshotFile
	// or WithMetrics), within about 100 ms of a change.
	Revision int64 `json:"revision"`
	Version  int64 `json:"version"`
	// Source is "etcd", "snapshot" (the etcd content in force came from
	// the snapshot file) or "" without an etcd layer.
	Source string `json:"source,omitempty"`
	// Etcd is the state of the watch; nil without an etcd layer.
	Etcd *EtcdHealth `json:"etcd,omitempty"`
	// LastError is the most recent error (a rejected candidate, an
	// unreadable source); values of secret fields are masked.
	LastError     string     `json:"last_error,omitempty"`
	LastErrorTime *time.Time `json:"last_error_time,omitempty"`
	// LastChange is when the configuration in force was published, and
	// Age how long ago that was, in seconds.
	LastChange time.Time `json:"last_change"`
	Age        float64   `json:"age_seconds"`
}

// EtcdHealth is the state of the etcd watch.
type EtcdHealth struct {
	// Watching is true while a watch stream is open and the client's
	// connection is up.
	Watching bool `json:"watching"`
	// Revision is the last etcd revision the watch applied.
	Revision int64 `json:"revision"`
	// Reconnects counts watch streams that answered again after a failure
	// (a broken connection, a restarted member, a lost leader).
	Reconnects int64 `json:"reconnects"`
	// Resyncs counts re-reads of the prefix after etcd compacted the
	// history the watch needed.
	Resyncs int64 `json:"resyncs"`
	// LastError is the watch's most recent failure.
	LastError string `json:"last_error,omitempty"`
}

// Health returns the current state. It is safe from any goroutine.
func (c *Config[T]) Health() Health {
	if !c.healthUsed.Swap(true) {
		c.startStatus() // from now on the status goroutine tracks the version
	}
	snap := c.snap.Load()
	h := Health{Status: "ok", Revision: snap.Revision, Version: c.version.Load(),
		LastChange: snap.Time, Age: time.Since(snap.Time).Seconds()}
	if e := c.lastErr.Load(); e != nil {
		t := e.time
		h.LastError, h.LastErrorTime = e.msg, &t
	}
	if c.etcd == nil {
		return h
	}
	h.Source = "etcd"
	st := c.etcd.State()
	h.Etcd = &EtcdHealth{Watching: st.Watching, Revision: st.Revision, Reconnects: st.Reconnects, Resyncs: st.Resyncs}
	if st.LastError != nil {
		h.Etcd.LastError = st.LastError.Error()
	}
	switch {
	case c.degraded.Load() && st.Watching:
		h.Status, h.Source, h.Reason = "degraded", "snapshot", "etcd content rejected (see last_error): serving the snapshot file"
	case c.degraded.Load():
		h.Status, h.Source, h.Reason = "degraded", "snapshot", "etcd unreachable: serving the snapshot file"
	case c.opts.watchEtcd && !st.Watching:
		h.Status, h.Reason = "degraded", "etcd watch is down"
	}
	if r := c.appHealth.Load(); r != nil && h.Status == "ok" {
		h.Status, h.Reason = "degraded", "health check: "+*r
	}
	return h
}

// WithHealthCheck gives the Config the application's own health: fn runs
// about once a second on the status goroutine, with a context that ends
// with the Config; while it fails, Health is degraded with its error as the
// reason, and so is the instance record (WithInstance), which is what a
// rollout controller watches to abort a rollout whose canaries suffer.
func WithHealthCheck(fn func(ctx context.Context) error) Option {
	return func(o *options) { o.healthCheck = fn }
}

// healthInterval is how often the status goroutine runs the health check
// and refreshes the instance record's health.
const healthInterval = time.Second

// checkHealth runs the application's health check, if any, and returns the
// health to report in the instance record.
func (c *Config[T]) checkHealth(ctx context.Context) Health {
	if fn := c.opts.healthCheck; fn != nil {
		cctx, cancel := context.WithTimeout(ctx, healthInterval)
		err := safeCheck(cctx, fn)
		cancel()
		if err != nil {
			msg := err.Error()
			c.appHealth.Store(&msg)
		} else {
			c.appHealth.Store(nil)
		}
	}
	return c.Health()
}

// safeCheck runs fn, turning a panic into an error.
func safeCheck(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return fn(ctx)
}

// HealthHandler answers with the Health as JSON: 200 when ok, 503 when
// degraded (or when the Config is nil: not loaded).
func (c *Config[T]) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if c == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(Health{Status: "not loaded"})
			return
		}
		h := c.Health()
		if h.Status != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(h)
	})
}

// errorRecord is the last error, for Health.
type errorRecord struct {
	msg  string
	time time.Time
}
