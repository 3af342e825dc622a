package etcd

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a jittered exponential backoff between retries: the wait
// starts at min, doubles after each one up to max, and each wait is spread
// over [d/2, d] so that many clients do not retry in step. A Backoff is
// not safe for concurrent use.
type Backoff struct {
	min, max time.Duration
	cur      time.Duration
}

// NewBackoff returns a backoff from lo to hi (lo of zero or less is one
// millisecond; hi below lo is lo).
func NewBackoff(lo, hi time.Duration) *Backoff {
	if lo <= 0 {
		lo = time.Millisecond
	}
	return &Backoff{min: lo, max: max(lo, hi), cur: lo}
}

// Next returns the next wait, jittered over [d/2, d], and doubles d (up to
// max) for the one after.
func (b *Backoff) Next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	return d/2 + rand.N(d/2+1)
}

// Reset makes the next wait start at min again, after a success.
func (b *Backoff) Reset() { b.cur = b.min }

// Sleep waits Next() or until ctx is done, and reports whether the wait
// elapsed (false: ctx is done).
func (b *Backoff) Sleep(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
