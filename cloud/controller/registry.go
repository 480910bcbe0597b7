package controller

import (
	"context"
	"sort"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/client"
)

// StartFunc runs one controller until ctx ends. It reads through its own informers
// and writes through cl.
type StartFunc func(ctx context.Context, cl *client.Client, log *zap.Logger)

var registry = map[string]StartFunc{}

// Register adds a controller the control plane starts; call it from an init
// function in the controller's file.
func Register(name string, start StartFunc) {
	if _, dup := registry[name]; dup {
		panic("controller registered twice: " + name)
	}
	registry[name] = start
}

// StartAll starts every registered controller, each through goFn (which runs its
// argument on a goroutine the caller waits for at shutdown).
func StartAll(ctx context.Context, cl *client.Client, log *zap.Logger, goFn func(func())) {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		start, clog := registry[n], log.Named(n)
		goFn(func() { start(ctx, cl, clog) })
	}
}
