package controller

import (
	"context"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/cloud/events"
)

// Recorder is the event recorder the controllers use; it lives in cloud/events so
// that the agent and the scheduler's binder share it without importing the
// controllers.
type Recorder = events.Recorder

// NewRecorder returns a recorder whose events name component as their source.
func NewRecorder(cl *client.Client, component string) *Recorder {
	return events.NewRecorder(cl, component)
}

// newRecorder returns a recorder for component that writes through d's client and
// stamps events with d's clock.
func newRecorder(d Deps, component string) *Recorder {
	r := events.NewRecorder(d.Client, component)
	r.Logger, r.Clock = d.Logger, d.Clock
	return r
}

func init() {
	// Events are garbage after an hour; one sweeper for every recorder.
	Register("event-gc", func(d Deps) Runner {
		return RunFunc(func(ctx context.Context) {
			for {
				if n, err := events.CleanupEvents(ctx, d.Client, events.TTL, d.Clock.Now()); err != nil && ctx.Err() == nil {
					d.Logger.Warn("deleting old events failed", zap.Error(err))
				} else if n > 0 {
					d.Logger.Debug("deleted old events", zap.Int("count", n))
				}
				if !sleep(ctx, d.Clock, events.TTL) {
					return
				}
			}
		})
	})
}
