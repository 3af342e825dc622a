package etcdtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strataconf/strata/internal/etcdtest"
)

// BenchmarkStart measures start-to-ready (Start returns once every member is
// ready) and, separately, Close.
func BenchmarkStart(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			var ready, closing time.Duration
			for b.Loop() {
				t0 := time.Now()
				c, err := etcdtest.Start(context.Background(), n)
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := c.Close(); err != nil {
					b.Fatal(err)
				}
				ready += t1.Sub(t0)
				closing += time.Since(t1)
			}
			b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ms-ready/op")
			b.ReportMetric(float64(closing.Milliseconds())/float64(b.N), "ms-close/op")
		})
	}
}
