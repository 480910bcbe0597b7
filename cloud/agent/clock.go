package agent

import (
	"github.com/cloudbox/cloudbox/internal/clock"
)

// Clock is the agent's source of time, and its drivers': restart, image-pull and
// API-retry back-off, probe delays and periods, grace periods, and the waits for a
// process to exit. Tests give a fake one and move time by hand. Context deadlines
// that bound a single network or driver call (a probe's timeoutSeconds, an API
// request) use real time, since they guard against a peer that hangs, not a
// schedule; so do the heartbeat and the VM reconciler's resync tickers, which a
// test that steps the fake clock to its next timer must not find armed.
type Clock = clock.Clock

// Timer is a one-shot timer of a Clock.
type Timer = clock.Timer
