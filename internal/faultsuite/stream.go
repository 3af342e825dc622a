//go:build faultsuite

package faultsuite

import (
	"context"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// stream is the sequence of writes of one scenario: writer Updates that
// each increment Counter and set Seq, and, every 50 steps, an invalid
// value put directly with a plain client (the way etcdctl would) and put
// right back.
type stream struct {
	cli      *clientv3.Client
	w        *config.Writer[App]
	limitKey string // the leaf key of App.Limit
	sc       Scenario

	acked  []ack
	failed []failure
	bad    []badValue
	abort  error // why the stream stopped early, nil if it did not
}

// ack is a write whose Update returned a Release.
type ack struct {
	step int
	rel  config.Release
}

// failure is a write whose Update returned an error; it may have
// committed anyway.
type failure struct {
	step int
	err  error
}

// badValue is an invalid value put around the writer.
type badValue struct {
	step  int
	value string
	rev   int64 // the revision that committed it; 0 if it did not commit
}

func newStream(cli *clientv3.Client, w *config.Writer[App], prefix string, sc Scenario) *stream {
	return &stream{cli: cli, w: w, limitKey: etcdprov.NewLayout(prefix).Data() + "limit", sc: sc}
}

// UpdateTimeout bounds one writer Update of the stream.
const UpdateTimeout = 10 * time.Second

// run makes the stream's writes, publishing its progress to e, and closes
// e.streamDone when it ends.
func (s *stream) run(ctx context.Context, e *Env) {
	defer close(e.streamDone)
	for step := 1; step <= s.sc.Writes; step++ {
		if err := ctx.Err(); err != nil {
			s.abort = err
			return
		}
		begin := time.Now()
		if step%50 == 25 {
			if err := s.injectInvalid(ctx, step); err != nil {
				s.abort = err
				return
			}
		}
		uctx, cancel := context.WithTimeout(ctx, UpdateTimeout)
		rel, err := s.w.Update(uctx, func(a *App) error {
			a.Counter++
			a.Seq = step
			return nil
		}, config.Author("faultsuite"), config.Message("step "+strconv.Itoa(step)))
		cancel()
		if err != nil {
			s.failed = append(s.failed, failure{step: step, err: err})
			e.Logf("write %d not acknowledged: %v", step, err)
		} else {
			s.acked = append(s.acked, ack{step: step, rel: *rel})
		}
		e.step.Store(int64(step))
		if d := s.sc.Pace - time.Since(begin); d > 0 {
			sleep(ctx, d)
		} else if err != nil {
			sleep(ctx, 50*time.Millisecond)
		}
	}
}

// injectInvalid puts an invalid value at the Limit key, alternately of the
// wrong type and out of range, records the revision that committed it, and
// puts the valid value back.
//
// Both puts are transactions guarded by the key's mod revision as last
// read, so that neither a retry after an ambiguous failure nor a request
// that commits late can land twice, or land after the valid value is back:
// the only invalid revision is the one recorded.
func (s *stream) injectInvalid(ctx context.Context, step int) error {
	value := fmt.Sprintf("not-a-number-%d", step)
	if (step/50)%2 == 1 {
		value = strconv.Itoa(1000 + step) // fails max=100
	}
	valid := strconv.Itoa(validLimit)
	_, before, err := s.getLimit(ctx)
	if err != nil {
		return err
	}
	_, _ = retry(ctx, 3, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.putOver(ctx, before, value)
	})
	b := badValue{step: step, value: value}
	defer func() { s.bad = append(s.bad, b) }()
	for range 20 {
		cur, modRev, err := s.getLimit(ctx)
		if err != nil {
			return err
		}
		if cur == value {
			b.rev = modRev
		}
		if cur == valid && modRev != before {
			return nil // an earlier attempt restored it
		}
		resp, err := s.putOver(ctx, modRev, valid)
		if err == nil && resp.Succeeded {
			return nil
		}
		sleep(ctx, 100*time.Millisecond)
	}
	return fmt.Errorf("could not restore %s after putting %q", s.limitKey, value)
}

// getLimit reads the Limit key: its value and mod revision.
func (s *stream) getLimit(ctx context.Context) (string, int64, error) {
	resp, err := retry(ctx, 10, func(ctx context.Context) (*clientv3.GetResponse, error) {
		return s.cli.Get(ctx, s.limitKey)
	})
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", s.limitKey, err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0, nil
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision, nil
}

// putOver puts value at the Limit key if its mod revision is still modRev.
func (s *stream) putOver(ctx context.Context, modRev int64, value string) (*clientv3.TxnResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.limitKey), "=", modRev)).
		Then(clientv3.OpPut(s.limitKey, value)).
		Commit()
}
