package controller

import (
	"context"
	"time"

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

func init() {
	// Events are garbage after an hour; one sweeper for every recorder.
	Register("event-gc", func(ctx context.Context, cl *client.Client, log *zap.Logger) {
		t := time.NewTicker(events.TTL)
		defer t.Stop()
		for {
			if n, err := events.CleanupEvents(ctx, cl, events.TTL, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("deleting old events failed", zap.Error(err))
			} else if n > 0 {
				log.Debug("deleted old events", zap.Int("count", n))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}
