package clock

import (
	"sync"
	"time"
)

// Fake is a Clock whose time moves only when a test calls Advance, so that windows,
// back-offs and schedules are tested without sleeping. Safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{}
	// armed is closed (and replaced) whenever a timer is armed.
	armed chan struct{}
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake clock that reads now until it is advanced.
func NewFake(now time.Time) *Fake {
	return &Fake{now: now, timers: map[*fakeTimer]struct{}{}, armed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when Advance reaches d from now.
func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{f: f, at: f.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- f.now
		return t
	}
	f.timers[t] = struct{}{}
	close(f.armed)
	f.armed = make(chan struct{})
	return t
}

// Advance moves the time forward by d and fires the timers that are then due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.fireDueLocked()
}

// StepNext moves the time to the earliest pending timer and fires it (and any other
// then due). It reports the step, or false when no timer was pending: a test of
// something that sleeps in turns (back-off, probes) walks it one timer at a time.
func (f *Fake) StepNext() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var first *fakeTimer
	for t := range f.timers {
		if first == nil || t.at.Before(first.at) {
			first = t
		}
	}
	if first == nil {
		return 0, false
	}
	d := max(first.at.Sub(f.now), 0)
	f.now = f.now.Add(d)
	f.fireDueLocked()
	return d, true
}

// Pending returns a channel that is ready once at least one timer is pending: a
// test waits on it before Advance, so that the timer it means to fire exists.
func (f *Fake) Pending() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) > 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return f.armed
}

// fireDueLocked fires the timers due by now; f.mu is held.
func (f *Fake) fireDueLocked() {
	for t := range f.timers {
		if !t.at.After(f.now) {
			delete(f.timers, t)
			t.ch <- f.now
		}
	}
}

type fakeTimer struct {
	f  *Fake
	at time.Time
	ch chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	_, ok := t.f.timers[t]
	delete(t.f.timers, t)
	return ok
}
