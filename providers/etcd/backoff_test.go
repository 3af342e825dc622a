package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strataconf/strata/providers/etcd"
)

func TestBackoff(t *testing.T) {
	b := etcd.NewBackoff(10*time.Millisecond, 80*time.Millisecond)
	for i, ceil := range []time.Duration{10, 20, 40, 80, 80, 80} {
		ceil *= time.Millisecond
		if d := b.Next(); d < ceil/2 || d > ceil {
			t.Fatalf("wait %d = %v, want within [%v, %v]", i, d, ceil/2, ceil)
		}
	}
	b.Reset()
	if d := b.Next(); d < 5*time.Millisecond || d > 10*time.Millisecond {
		t.Fatalf("after Reset: %v", d)
	}
	if d := etcd.NewBackoff(0, 0).Next(); d > time.Millisecond {
		t.Fatalf("NewBackoff(0, 0).Next() = %v", d)
	}
}

func TestBackoffSleep(t *testing.T) {
	b := etcd.NewBackoff(time.Millisecond, time.Millisecond)
	if !b.Sleep(context.Background()) {
		t.Fatal("Sleep without a deadline was cut short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b = etcd.NewBackoff(time.Hour, time.Hour)
	start := time.Now()
	if b.Sleep(ctx) || time.Since(start) > time.Second {
		t.Fatal("Sleep did not end with its context")
	}
}

func TestWrap(t *testing.T) {
	if etcd.Wrap("read", []string{"a"}, nil) != nil {
		t.Fatal("Wrap(nil) is not nil")
	}
	err := etcd.Wrap("read /p/data/", []string{"http://a:2379", "http://b:2379"}, context.DeadlineExceeded)
	if got, want := err.Error(), "etcd [http://a:2379,http://b:2379]: read /p/data/: context deadline exceeded"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the cause is lost")
	}
}
