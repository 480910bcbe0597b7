package clock

import (
	"sync/atomic"
	"testing"
	"time"
)

// stepClock hands each timer it arms to the test, which fires it by hand.
type stepClock struct{ armed chan *stepTimer }

type stepTimer struct {
	d       time.Duration
	c       chan time.Time
	stopped atomic.Bool
}

func (c *stepClock) Now() time.Time { return time.Time{} }

func (c *stepClock) NewTimer(d time.Duration) Timer {
	t := &stepTimer{d: d, c: make(chan time.Time, 1)}
	c.armed <- t
	return t
}

func (t *stepTimer) C() <-chan time.Time { return t.c }
func (t *stepTimer) Stop() bool          { return !t.stopped.Swap(true) }

func TestSleepWaitsForItsTimerOrDone(t *testing.T) {
	c := &stepClock{armed: make(chan *stepTimer, 1)}
	closed := make(chan struct{})
	close(closed)

	if !Sleep(c, 0, nil) || Sleep(c, -time.Second, closed) || len(c.armed) != 0 {
		t.Error("a sleep of zero or less: passes unless done is closed, and arms no timer")
	}

	passed := make(chan bool)
	go func() { passed <- Sleep(c, time.Minute, nil) }()
	tm := <-c.armed
	tm.c <- time.Time{}
	if !<-passed || tm.d != time.Minute || !tm.stopped.Load() {
		t.Errorf("a sleep whose timer fired: d %v, stopped %v", tm.d, tm.stopped.Load())
	}

	if Sleep(c, time.Hour, closed) {
		t.Error("a sleep whose done is closed passed")
	}
	if tm := <-c.armed; !tm.stopped.Load() {
		t.Error("a sleep ended by done left its timer armed")
	}
}
