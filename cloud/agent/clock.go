package agent

import "time"

// Clock is the agent's source of time for everything that is policy rather than I/O:
// restart and image-pull back-off, probe delays and periods, grace periods. Tests
// give a fake one and move time by hand. Timeouts that bound a single network or
// driver call (a probe's timeoutSeconds, an API request) use real time, since they
// guard against a peer that hangs, not a schedule.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now. A d of zero or less fires
	// at once.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	// C delivers the time once the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was still pending.
	Stop() bool
}

// realClock is the Clock of the machine.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// sleep waits d on clk, or until done is closed; it reports whether d passed.
func sleep(clk Clock, d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-done:
		return false
	}
}
