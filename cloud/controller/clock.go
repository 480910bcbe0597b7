package controller

import (
	"context"
	"sync"
	"time"

	"github.com/cloudbox/cloudbox/internal/clock"
)

// Clock is the time source of the controllers that wait for a moment (CronJob
// schedules, Job back-off and deadlines), so tests can drive them with a fake one.
type Clock = clock.Clock

// Timer is a one-shot timer of a Clock.
type Timer = clock.Timer

// RealClock is the wall clock.
type RealClock = clock.Real

// waker queues keys again at given times by a Clock, keeping only the earliest
// pending wake per key. It is safe for concurrent use.
type waker struct {
	clock Clock
	queue *Queue
	mu    sync.Mutex
	wakes map[string]time.Time
}

func newWaker(clock Clock, q *Queue) *waker {
	return &waker{clock: clock, queue: q, wakes: map[string]time.Time{}}
}

// at queues key at t, unless a wake at or before t is already pending.
func (w *waker) at(ctx context.Context, key string, t time.Time) {
	w.mu.Lock()
	if p, ok := w.wakes[key]; ok && !p.After(t) {
		w.mu.Unlock()
		return
	}
	w.wakes[key] = t
	w.mu.Unlock()
	timer := w.clock.NewTimer(t.Sub(w.clock.Now()))
	go func() {
		select {
		case <-timer.C():
			w.mu.Lock()
			if w.wakes[key].Equal(t) {
				delete(w.wakes, key)
			}
			w.mu.Unlock()
			w.queue.Add(key)
		case <-ctx.Done():
			timer.Stop()
		}
	}()
}
