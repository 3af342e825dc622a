package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
)

// casResult holds the compare-and-swap throughput of section 4.
type casResult struct {
	rows []casRow
}

// casRow is one (subject, writers) case.
type casRow struct {
	name      string
	writers   int
	commits   int64 // successful commits
	failed    int64 // increments that gave up (attempts exhausted or error)
	attempts  int64 // read-modify-write attempts, commits included
	elapsed   time.Duration
	final     int64 // the counter's value at the end
	lostCheck bool  // final == commits
}

func (r casRow) perSecond() float64 { return float64(r.commits) / r.elapsed.Seconds() }

const (
	casRaw    = "raw clientv3 Txn CAS"
	casStrata = "Strata Writer.Update"
)

// casMaxAttempts bounds every increment's retries, raw and Strata alike.
const casMaxAttempts = 10000

// measureCAS increments a counter on one key opts.casCommits times per
// case, spread over 1 and 4 writers: with a raw loop (Get, then a Txn that
// puts n+1 if the key's ModRevision is unchanged; retried at once on a
// lost race) and with Strata's Writer.Update (read, re-run the mutation,
// validate, commit guarded by the version key with a release record;
// retried with a jittered backoff of 1 ms doubling to 100 ms). Each case
// has its own prefix. At the end the counter must equal the number of
// successful commits: an update lost to a race would show as a shortfall.
func measureCAS(ctx context.Context, b *bench) (*casResult, error) {
	res := &casResult{}
	for _, writers := range b.opts.casWriters {
		for _, name := range []string{casRaw, casStrata} {
			var (
				row casRow
				err error
			)
			p := fmt.Sprintf("/bench/cas/%s-%d", map[string]string{casRaw: "raw", casStrata: "strata"}[name], writers)
			if name == casRaw {
				row, err = casRawCase(ctx, b, p, writers)
			} else {
				row, err = casStrataCase(ctx, b, p, writers)
			}
			if err != nil {
				return nil, fmt.Errorf("cas %s, %d writers: %w", name, writers, err)
			}
			res.rows = append(res.rows, row)
		}
	}
	return res, nil
}

// spread runs total calls of inc over writers goroutines and times them.
// inc reports whether the increment committed.
func spread(total, writers int, inc func() bool) (commits, failed int64, elapsed time.Duration) {
	jobs := make(chan struct{}, total)
	for range total {
		jobs <- struct{}{}
	}
	close(jobs)
	var c, f atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for range jobs {
				if inc() {
					c.Add(1)
				} else {
					f.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return c.Load(), f.Load(), time.Since(start)
}

func casRawCase(ctx context.Context, b *bench, p string, writers int) (casRow, error) {
	key := p + "/data/n"
	if _, err := b.cli.Put(ctx, key, "0"); err != nil {
		return casRow{}, err
	}
	var attempts atomic.Int64
	var firstErr atomic.Pointer[error]
	inc := func() bool {
		for range casMaxAttempts {
			attempts.Add(1)
			resp, err := b.cli.Get(ctx, key)
			if err != nil || len(resp.Kvs) == 0 {
				firstErr.CompareAndSwap(nil, &err)
				return false
			}
			n, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				return false
			}
			tr, err := b.cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
				Then(clientv3.OpPut(key, strconv.FormatInt(n+1, 10))).Commit()
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				return false
			}
			if tr.Succeeded {
				return true
			}
		}
		return false
	}
	commits, failed, elapsed := spread(b.opts.casCommits, writers, inc)
	if e := firstErr.Load(); e != nil && *e != nil {
		return casRow{}, *e
	}
	resp, err := b.cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return casRow{}, errors.Join(err, errors.New("counter key missing"))
	}
	final, _ := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	return casRow{name: casRaw, writers: writers, commits: commits, failed: failed, attempts: attempts.Load(),
		elapsed: elapsed, final: final, lostCheck: final == commits}, nil
}

func casStrataCase(ctx context.Context, b *bench, p string, writers int) (casRow, error) {
	w, err := config.NewWriter[Counter](b.cli, p, config.WithMaxAttempts(casMaxAttempts))
	if err != nil {
		return casRow{}, err
	}
	defer w.Close()
	start, startVersion, _, err := w.Get(ctx)
	if err != nil {
		return casRow{}, err
	}
	var attempts atomic.Int64
	var firstErr atomic.Pointer[error]
	inc := func() bool {
		_, err := w.Update(ctx, func(c *Counter) error { attempts.Add(1); c.N++; return nil },
			config.Author("bench"))
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
			return false
		}
		return true
	}
	commits, failed, elapsed := spread(b.opts.casCommits, writers, inc)
	if e := firstErr.Load(); e != nil {
		return casRow{}, *e
	}
	end, endVersion, _, err := w.Get(ctx)
	if err != nil {
		return casRow{}, err
	}
	final := end.N - start.N
	ok := final == commits && endVersion-startVersion == commits
	return casRow{name: casStrata, writers: writers, commits: commits, failed: failed, attempts: attempts.Load(),
		elapsed: elapsed, final: final, lostCheck: ok}, nil
}

// allChecksPass reports whether no case lost an update or failed one.
func (r *casResult) allChecksPass() bool {
	for _, x := range r.rows {
		if !x.lostCheck || x.failed > 0 {
			return false
		}
	}
	return len(r.rows) > 0
}

// row returns the (name, writers) row.
func (r *casResult) row(name string, writers int) (casRow, bool) {
	for _, x := range r.rows {
		if x.name == name && x.writers == writers {
			return x, true
		}
	}
	return casRow{}, false
}
