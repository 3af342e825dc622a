package config

import (
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WithMetrics registers the Config's Prometheus metrics with reg. Every
// metric carries the constant labels prefix (the etcd prefix) and type (the
// Go type), so several Configs can share a registry as long as those differ.
//
//	strata_reloads_total{result="applied|unchanged|rejected"}
//	strata_revision, strata_version, strata_degraded
//	strata_watch_reconnects_total, strata_watch_resyncs_total
//	strata_subscriber_duration_seconds
//	strata_apply_lag_seconds   (watch event received → snapshot published)
func WithMetrics(reg prometheus.Registerer) Option {
	return func(o *options) { o.metrics = reg }
}

// metrics are the Config's collectors; nil when WithMetrics was not given.
type metrics struct {
	reloads    *prometheus.CounterVec
	subscriber prometheus.Histogram
	lag        prometheus.Histogram
}

func (c *Config[T]) registerMetrics() error {
	if c.opts.metrics == nil {
		return nil
	}
	labels := prometheus.Labels{"prefix": c.opts.etcdPrefix, "type": reflect.TypeFor[T]().String()}
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_reloads_total", ConstLabels: labels,
			Help: "Candidate configurations by result: applied, unchanged (nothing visible changed) or rejected."}, []string{"result"}),
		subscriber: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_subscriber_duration_seconds", ConstLabels: labels,
			Help: "Time OnChange subscribers took for one change, all of them together.", Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_apply_lag_seconds", ConstLabels: labels,
			Help: "Time from receiving an update from a source to publishing the new snapshot.", Buckets: prometheus.ExponentialBuckets(1e-5, 4, 12)}),
	}
	for _, r := range []string{"applied", "unchanged", "rejected"} {
		m.reloads.WithLabelValues(r)
	}
	gauge := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, fn)
	}
	counter := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, fn)
	}
	cs := []prometheus.Collector{m.reloads, m.subscriber, m.lag,
		gauge("strata_revision", "etcd revision of the configuration in force.", func() float64 { return float64(c.snap.Load().Revision) }),
		gauge("strata_version", "Release version of the configuration in force.", func() float64 { return float64(c.version.Load()) }),
		gauge("strata_degraded", "1 while the Config is degraded (see Health), else 0.", func() float64 {
			if c.Health().Status != "ok" {
				return 1
			}
			return 0
		}),
	}
	if c.etcd != nil {
		cs = append(cs,
			counter("strata_watch_reconnects_total", "etcd watch streams re-established after a failure.", func() float64 { return float64(c.etcd.State().Reconnects) }),
			counter("strata_watch_resyncs_total", "Re-reads of the prefix after the watch history was compacted.", func() float64 { return float64(c.etcd.State().Resyncs) }))
	}
	for i, col := range cs {
		if err := c.opts.metrics.Register(col); err != nil {
			for _, done := range cs[:i] {
				c.opts.metrics.Unregister(done)
			}
			return err
		}
	}
	c.collectors = cs
	c.metrics = m
	return nil
}

func (c *Config[T]) unregisterMetrics() {
	for _, col := range c.collectors {
		c.opts.metrics.Unregister(col)
	}
}

func (m *metrics) reload(result string) {
	if m != nil {
		m.reloads.WithLabelValues(result).Inc()
	}
}

func (m *metrics) observeSubscribers(d time.Duration) {
	if m != nil {
		m.subscriber.Observe(d.Seconds())
	}
}

func (m *metrics) observeLag(since time.Time) {
	if m != nil && !since.IsZero() {
		m.lag.Observe(time.Since(since).Seconds())
	}
}
