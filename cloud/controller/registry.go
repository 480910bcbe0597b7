package controller

import (
	"context"
	"sort"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/client"
)

// Deps is what the control plane gives every controller: the API client it writes
// through, the process's shared informer factory it reads through, its clock and
// its logger.
type Deps struct {
	Client *client.Client
	// Factory hands out the shared informers. The caller starts it; a controller
	// takes its informers when it is made, so that the factory lists them before the
	// control plane calls itself ready.
	Factory *client.Factory
	// Clock is the only time source of the controllers; nil means the wall clock.
	Clock Clock
	// Logger may be nil.
	Logger *zap.Logger
}

// withDefaults fills the optional fields.
func (d Deps) withDefaults() Deps {
	if d.Clock == nil {
		d.Clock = RealClock{}
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	return d
}

// Named returns d with its defaults filled and its logger named for a component.
func (d Deps) Named(name string) Deps {
	d = d.withDefaults()
	d.Logger = d.Logger.Named(name)
	return d
}

// Runner is a controller that is set up: Run works until ctx ends and returns once
// every goroutine it started has stopped.
type Runner interface{ Run(ctx context.Context) }

// RunFunc makes a function a Runner.
type RunFunc func(ctx context.Context)

// Run calls f.
func (f RunFunc) Run(ctx context.Context) { f(ctx) }

// StartFunc sets one controller up on d (taking its informers from d.Factory and
// adding its handlers) and returns it to be run.
type StartFunc func(d Deps) Runner

var registry = map[string]StartFunc{}

// Register adds a controller the control plane starts; call it from an init
// function in the controller's file.
func Register(name string, start StartFunc) {
	if _, dup := registry[name]; dup {
		panic("controller registered twice: " + name)
	}
	registry[name] = start
}

// StartAll sets every registered controller up on d, each with its logger named for
// it, and then runs each through goFn (which runs its argument on a goroutine the
// caller waits for at shutdown). Call it before d.Factory starts or after: either
// way the informers exist once it returns.
func StartAll(ctx context.Context, d Deps, goFn func(func())) {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	runners := make([]Runner, len(names))
	for i, n := range names {
		runners[i] = registry[n](d.Named(n))
	}
	for _, r := range runners {
		goFn(func() { r.Run(ctx) })
	}
}
