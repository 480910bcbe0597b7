package store

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCreateParallel measures creates per second from 16 concurrent writers,
// which is what group commit is for: one fsync per batch, not per write.
func BenchmarkCreateParallel(b *testing.B) {
	s, _ := openTest(b, Options{})
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			name := fmt.Sprintf("p%d", n.Add(1))
			if _, err := s.Create(context.Background(), pods, newPod("default", name)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
}
