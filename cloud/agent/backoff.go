package agent

import "time"

// Back-off defaults, as the kubelet has them.
const (
	defaultBackoffBase  = 10 * time.Second
	defaultBackoffMax   = 5 * time.Minute
	defaultBackoffReset = 10 * time.Minute
	// pullErrorShown is how long ErrImagePull stays the reason after a failed pull
	// before the container shows ImagePullBackOff for the rest of the wait, so that
	// both are seen, as with the kubelet.
	pullErrorShown = time.Second
)

// backoffPolicy is how a delay grows: from Base, doubling, at most Max; a container
// that ran for Reset or longer before it exited starts again without delay.
type backoffPolicy struct {
	Base, Max, Reset time.Duration
}

// backoff is one container's crash back-off, the kubelet's way: the first restart is
// immediate, then 10 s, 20 s, 40 s ... up to 5 min after each exit.
type backoff struct {
	delay time.Duration
}

// restartAt is when a container that ran for ran and finished at finished may start
// again.
func (b *backoff) restartAt(p backoffPolicy, finished time.Time, ran time.Duration) time.Time {
	if ran >= p.Reset {
		b.delay = 0
	}
	return finished.Add(b.delay)
}

// restarted records a restart: the next exit waits longer.
func (b *backoff) restarted(p backoffPolicy) {
	b.delay = p.next(b.delay)
}

// next is the delay after d.
func (p backoffPolicy) next(d time.Duration) time.Duration {
	if d <= 0 {
		return p.Base
	}
	return min(2*d, p.Max)
}

// retry is the back-off of something that failed before a task could start (an image
// pull, a ConfigMap that does not exist yet, a volume): the first failure waits Base.
type retry struct {
	delay    time.Duration
	failedAt time.Time
	at       time.Time
}

// failed records a failure at now and returns when to try again.
func (r *retry) failed(p backoffPolicy, now time.Time) time.Time {
	r.delay = p.next(r.delay)
	r.failedAt, r.at = now, now.Add(r.delay)
	return r.at
}

// waiting reports whether now is before the next try.
func (r *retry) waiting(now time.Time) bool { return now.Before(r.at) }

// reset forgets past failures after a success.
func (r *retry) reset() { *r = retry{} }

// earliest returns the earlier of two wake-up times, where zero means none.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
