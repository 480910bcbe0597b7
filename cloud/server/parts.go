package server

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// part is one long-running piece of a Node. run returns once ctx ends, or when it
// fails; a part with nothing more to do may return nil early.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// runParts runs parts under one errgroup, each with a context of its own. Once ctx
// ends or a part fails, it stops them in reverse order: each part is cancelled only
// after every part after it has returned, so a part never outlives what it uses. It
// returns the first failure; an error a part returns after it was stopped is not one.
func runParts(ctx context.Context, log *zap.Logger, parts []part) error {
	g, stop := errgroup.WithContext(ctx)
	stops := make([]func(), len(parts))
	for i, p := range parts {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		stops[i] = func() { cancel(); <-done }
		g.Go(func() error {
			defer close(done)
			if err := p.run(pctx); err != nil && pctx.Err() == nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			return nil
		})
	}
	<-stop.Done()
	for i := len(parts) - 1; i >= 0; i-- {
		stops[i]()
		log.Debug("stopped", zap.String("part", parts[i].name))
	}
	return g.Wait()
}
