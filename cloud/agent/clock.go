package agent

import (
	"time"

	"github.com/cloudbox/cloudbox/internal/clock"
)

// Clock is the agent's source of time for everything that is policy rather than I/O:
// restart and image-pull back-off, probe delays and periods, grace periods. Tests
// give a fake one and move time by hand. Timeouts that bound a single network or
// driver call (a probe's timeoutSeconds, an API request) use real time, since they
// guard against a peer that hangs, not a schedule.
type Clock = clock.Clock

// Timer is a one-shot timer of a Clock.
type Timer = clock.Timer

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
