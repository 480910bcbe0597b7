package client

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Factory hands out one shared informer per kind to every component of a process,
// as client-go's SharedInformerFactory does: each kind is listed and watched once,
// whoever asks for it, and its cache is kept once. It is safe for concurrent use.
type Factory struct {
	c      *Client
	log    *zap.Logger
	scopes map[string]ListOptions

	mu        sync.Mutex
	informers map[string]*Informer // by resource
	ctx       context.Context      // set by Start; informers made later start at once
	wg        sync.WaitGroup
	streams   atomic.Int64
}

// FactoryOptions configures a Factory. The zero value watches every kind whole.
type FactoryOptions struct {
	// Logger may be nil.
	Logger *zap.Logger
	// Scopes narrows the informer of a resource ("pods") by selectors, e.g. a worker
	// watching only the pods bound to it. Readers then see only that part; the
	// indexes work the same.
	Scopes map[string]ListOptions
}

// NewFactory returns a factory whose informers list and watch through c.
func NewFactory(c *Client, opts FactoryOptions) *Factory {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Factory{c: c, log: opts.Logger, scopes: opts.Scopes, informers: map[string]*Informer{}}
}

// Informer returns the shared informer of kind k, making it on first use. Once Start
// was called, an informer made later starts at once.
func (f *Factory) Informer(k *api.KindInfo) *Informer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if inf, ok := f.informers[k.Resource]; ok {
		return inf
	}
	inf := NewInformer(f.c, k, "", f.scopes[k.Resource], f.log)
	inf.streams = &f.streams
	f.informers[k.Resource] = inf
	if f.ctx != nil {
		f.run(inf)
	}
	return inf
}

// Start runs every informer made so far, and every one made later, until ctx ends.
// Call it once; Wait waits for them to stop.
func (f *Factory) Start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx != nil {
		panic("client: factory started twice")
	}
	f.ctx = ctx
	for _, inf := range f.informers {
		f.run(inf)
	}
}

func (f *Factory) run(inf *Informer) {
	f.wg.Add(1)
	go func() { defer f.wg.Done(); inf.Run(f.ctx) }()
}

// WaitForSync waits until every informer made so far has loaded its first list; it
// returns false if ctx ends first.
func (f *Factory) WaitForSync(ctx context.Context) bool {
	f.mu.Lock()
	infs := make([]*Informer, 0, len(f.informers))
	for _, inf := range f.informers {
		infs = append(infs, inf)
	}
	f.mu.Unlock()
	return WaitForSync(ctx, infs...)
}

// Wait waits until the informers have stopped (after Start's ctx ended).
func (f *Factory) Wait() { f.wg.Wait() }

// Resources returns the resources the factory has informers for, sorted.
func (f *Factory) Resources() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.informers))
	for r := range f.informers {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Streams is how many watch streams the factory's informers hold open now.
func (f *Factory) Streams() int { return int(f.streams.Load()) }
