package events

import (
	"context"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/internal/clock"
)

// DropReportWindow is how often a Recorder logs the events its full queue turned
// away: one line per reason and window, since a burst drops hundreds at once and a
// line for each would bury every other log line.
const DropReportWindow = 10 * time.Second

// dropCounter counts dropped events by reason until report logs them. add is safe
// for concurrent use and never blocks.
type dropCounter struct {
	mu     sync.Mutex
	counts map[string]int
	// kick wakes report when a window's first drop arrives.
	kick chan struct{}
}

func newDropCounter() *dropCounter {
	return &dropCounter{kick: make(chan struct{}, 1)}
}

// add counts one event of reason dropped.
func (d *dropCounter) add(reason string) {
	d.mu.Lock()
	if d.counts == nil {
		d.counts = map[string]int{}
	}
	d.counts[reason]++
	first := len(d.counts) == 1 && d.counts[reason] == 1
	d.mu.Unlock()
	if first {
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}
}

// take returns the counts so far and starts again from none.
func (d *dropCounter) take() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.counts
	d.counts = nil
	return c
}

// report logs the drops once per window: the window opens at its first drop and
// closes window later with a line per reason. What is left when ctx is cancelled
// is logged then.
func (d *dropCounter) report(ctx context.Context, clk clock.Clock, window time.Duration, log *zap.Logger) {
	for {
		select {
		case <-ctx.Done():
			logDrops(log, d.take(), window)
			return
		case <-d.kick:
		}
		t := clk.NewTimer(window)
		select {
		case <-ctx.Done():
			t.Stop()
			logDrops(log, d.take(), window)
			return
		case <-t.C():
			logDrops(log, d.take(), window)
		}
	}
}

func logDrops(log *zap.Logger, counts map[string]int, window time.Duration) {
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		log.Warn("event queue full; dropped events",
			zap.String("reason", r), zap.Int("dropped", counts[r]), zap.Duration("window", window))
	}
}
