package controller

import (
	"context"
	"sync"
	"time"

	"github.com/cloudbox/cloudbox/internal/clock"
)

// Clock is the controllers' one time source (schedules, back-off, deadlines, grace
// periods, expectations, status times), so tests can drive them with a fake one.
type Clock = clock.Clock

// Timer is a one-shot timer of a Clock.
type Timer = clock.Timer

// RealClock is the wall clock.
type RealClock = clock.Real

// sleep waits for d by c; it returns false, early, if ctx ends first.
func sleep(ctx context.Context, c Clock, d time.Duration) bool {
	t := c.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
		return false
	case <-t.C():
		return true
	}
}

// waker queues keys again at given times by its queue's clock, keeping only the
// earliest pending wake per key. It is safe for concurrent use.
type waker struct {
	queue *Queue
	mu    sync.Mutex
	wakes map[string]time.Time
}

func newWaker(q *Queue) *waker {
	return &waker{queue: q, wakes: map[string]time.Time{}}
}

// at queues key at t, unless a wake at or before t is already pending.
func (w *waker) at(key string, t time.Time) {
	w.mu.Lock()
	if p, ok := w.wakes[key]; ok && !p.After(t) {
		w.mu.Unlock()
		return
	}
	w.wakes[key] = t
	w.mu.Unlock()
	wake := func() {
		w.mu.Lock()
		if w.wakes[key].Equal(t) {
			delete(w.wakes, key)
		}
		w.mu.Unlock()
		w.queue.Add(key)
	}
	if d := t.Sub(w.queue.clock().Now()); d > 0 {
		w.queue.after(w.queue.clock(), d, wake)
	} else {
		wake()
	}
}
