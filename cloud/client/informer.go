package client

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Handler receives an informer's changes. Any field may be nil. Handlers run on the
// informer's goroutine, one at a time, and must not block for long.
type Handler struct {
	OnAdd    func(obj api.Object)
	OnUpdate func(old, obj api.Object)
	OnDelete func(obj api.Object)
}

// Informer keeps a local cache of one kind, filled by a list and kept current by a
// watch that resumes from the last revision it saw (and lists again when that
// revision was compacted). It is safe for concurrent use.
type Informer struct {
	c     *Client
	kind  *api.KindInfo
	ns    string
	opts  ListOptions
	log   *zap.Logger
	mu    sync.RWMutex
	items map[string]api.Object
	hs    []Handler

	syncOnce sync.Once
	synced   chan struct{}
}

// NewInformer returns an informer for kind in namespace ns ("" for all) narrowed by
// the selectors in opts. Call Run to start it.
func NewInformer(c *Client, kind *api.KindInfo, ns string, opts ListOptions, log *zap.Logger) *Informer {
	if log == nil {
		log = zap.NewNop()
	}
	return &Informer{c: c, kind: kind, ns: ns, opts: opts, log: log.With(zap.String("resource", kind.Resource)),
		items: map[string]api.Object{}, synced: make(chan struct{})}
}

// AddHandler registers h; call it before Run.
func (i *Informer) AddHandler(h Handler) { i.hs = append(i.hs, h) }

// Synced is closed once the first list has been loaded.
func (i *Informer) Synced() <-chan struct{} { return i.synced }

// WaitForSync waits until every informer has loaded its first list; it returns
// false if ctx ends first.
func WaitForSync(ctx context.Context, infs ...*Informer) bool {
	for _, inf := range infs {
		select {
		case <-inf.Synced():
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// StartInformers runs each informer until ctx ends and waits for them to sync, as
// WaitForSync.
func StartInformers(ctx context.Context, infs ...*Informer) bool {
	for _, inf := range infs {
		go inf.Run(ctx)
	}
	return WaitForSync(ctx, infs...)
}

// List returns the cached objects; they must not be modified.
func (i *Informer) List() []api.Object {
	i.mu.RLock()
	defer i.mu.RUnlock()
	out := make([]api.Object, 0, len(i.items))
	for _, o := range i.items {
		out = append(out, o)
	}
	return out
}

// Get returns the cached object with key "namespace/name" (or "name"), or nil.
func (i *Informer) Get(key string) api.Object {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.items[key]
}

// Run lists and watches until ctx is cancelled, retrying with back-off.
func (i *Informer) Run(ctx context.Context) {
	backoff := 200 * time.Millisecond
	rv := ""
	for ctx.Err() == nil {
		var err error
		if rv == "" {
			rv, err = i.relist(ctx)
		}
		if err == nil {
			rv, err = i.watch(ctx, rv)
			if err == nil {
				backoff = 200 * time.Millisecond
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		if IsGone(err) {
			rv = ""
			continue
		}
		i.log.Debug("list/watch failed; retrying", zap.Error(err), zap.Duration("in", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// relist replaces the cache with a fresh list, telling handlers what changed.
func (i *Informer) relist(ctx context.Context) (string, error) {
	l, err := i.c.ListAll(ctx, i.kind, i.ns, ListOptions{LabelSelector: i.opts.LabelSelector, FieldSelector: i.opts.FieldSelector, Limit: 500})
	if err != nil {
		return "", err
	}
	fresh := make(map[string]api.Object, len(l.Items))
	for _, o := range l.Items {
		fresh[o.GetObjectMeta().Key()] = o
	}
	i.mu.Lock()
	old := i.items
	i.items = fresh
	i.mu.Unlock()
	for k, o := range fresh {
		if prev, ok := old[k]; ok {
			if prev.GetObjectMeta().ResourceVersion != o.GetObjectMeta().ResourceVersion {
				i.notifyUpdate(prev, o)
			}
		} else {
			i.notifyAdd(o)
		}
	}
	for k, o := range old {
		if _, ok := fresh[k]; !ok {
			i.notifyDelete(o)
		}
	}
	i.syncOnce.Do(func() { close(i.synced) })
	return l.ResourceVersion, nil
}

// watch applies events until the stream ends, returning the last revision seen.
func (i *Informer) watch(ctx context.Context, rv string) (string, error) {
	opts := i.opts
	opts.ResourceVersion = rv
	events, err := i.c.Watch(ctx, i.kind, i.ns, opts)
	if err != nil {
		return rv, err
	}
	for ev := range events {
		if ev.Err != nil {
			return rv, ev.Err
		}
		m := ev.Object.GetObjectMeta()
		rv = m.ResourceVersion
		if ev.Type == "BOOKMARK" {
			continue
		}
		key := m.Key()
		i.mu.Lock()
		prev := i.items[key]
		if ev.Type == "DELETED" {
			delete(i.items, key)
		} else {
			i.items[key] = ev.Object
		}
		i.mu.Unlock()
		switch {
		case ev.Type == "DELETED":
			if prev != nil {
				i.notifyDelete(ev.Object)
			}
		case prev == nil:
			i.notifyAdd(ev.Object)
		default:
			i.notifyUpdate(prev, ev.Object)
		}
	}
	return rv, ctx.Err()
}

func (i *Informer) notifyAdd(o api.Object) {
	for _, h := range i.hs {
		if h.OnAdd != nil {
			h.OnAdd(o)
		}
	}
}

func (i *Informer) notifyUpdate(old, o api.Object) {
	for _, h := range i.hs {
		if h.OnUpdate != nil {
			h.OnUpdate(old, o)
		}
	}
}

func (i *Informer) notifyDelete(o api.Object) {
	for _, h := range i.hs {
		if h.OnDelete != nil {
			h.OnDelete(o)
		}
	}
}
