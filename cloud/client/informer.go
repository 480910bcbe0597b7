package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Handler receives an informer's changes. Any field may be nil. Handlers of one
// informer run one at a time, in the order the changes happened, and must not block
// for long (nor add handlers to the same informer).
type Handler struct {
	OnAdd    func(obj api.Object)
	OnUpdate func(old, obj api.Object)
	OnDelete func(obj api.Object)
}

// Informer keeps a local cache of one kind, filled by a list and kept current by a
// watch that resumes from the last revision it saw (and lists again when that
// revision was compacted). The cache is indexed by namespace, by owner and
// controller UID and, for pods, by node name. Its objects are shared by every reader
// and must not be modified. It is safe for concurrent use.
type Informer struct {
	c    *Client
	kind *api.KindInfo
	ns   string
	opts ListOptions
	log  *zap.Logger

	// dispatch serialises changes to the cache with their notifications, so a
	// handler added late sees the cache as it was and every change after it.
	dispatch sync.Mutex
	hs       []Handler

	mu      sync.RWMutex
	items   map[string]api.Object
	indexes indexes
	snap    atomic.Pointer[snapshot] // nil after a change, until the next List

	started  atomic.Bool
	syncOnce sync.Once
	synced   chan struct{}
	// streams counts this informer's open watch streams, for the factory's metric.
	streams *atomic.Int64
}

// snapshot is the list handed to readers between two changes, so that List does
// not copy the cache on every call.
type snapshot struct {
	objs []api.Object
	// typed is a []T built from objs once, for the Typed informer that asked first.
	typedOnce sync.Once
	typed     any
}

// NewInformer returns an informer for kind in namespace ns ("" for all) narrowed by
// the selectors in opts. Call Run to start it. Components of a process share theirs
// through a Factory instead of making their own.
func NewInformer(c *Client, kind *api.KindInfo, ns string, opts ListOptions, log *zap.Logger) *Informer {
	if log == nil {
		log = zap.NewNop()
	}
	return &Informer{c: c, kind: kind, ns: ns, opts: opts, log: log.With(zap.String("resource", kind.Resource)),
		items: map[string]api.Object{}, indexes: newIndexes(kind), synced: make(chan struct{}), streams: new(atomic.Int64)}
}

// Kind is the kind this informer caches.
func (i *Informer) Kind() *api.KindInfo { return i.kind }

// AddHandler registers h. When the informer has already loaded objects, h first
// receives OnAdd for each of them, so a handler added late misses nothing.
func (i *Informer) AddHandler(h Handler) {
	i.dispatch.Lock()
	defer i.dispatch.Unlock()
	if h.OnAdd != nil {
		i.mu.RLock()
		existing := make([]api.Object, 0, len(i.items))
		for _, o := range i.items {
			existing = append(existing, o)
		}
		i.mu.RUnlock()
		for _, o := range existing {
			h.OnAdd(o)
		}
	}
	i.hs = append(i.hs, h)
}

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
// WaitForSync. It is for informers made with NewInformer; a Factory runs its own.
func StartInformers(ctx context.Context, infs ...*Informer) bool {
	for _, inf := range infs {
		go inf.Run(ctx)
	}
	return WaitForSync(ctx, infs...)
}

// List returns the cached objects. The slice is shared until the next change: the
// caller must modify neither it nor the objects.
func (i *Informer) List() []api.Object { return i.snapshot().objs }

// snapshot returns the list of the cache since its last change, building it once.
func (i *Informer) snapshot() *snapshot {
	if s := i.snap.Load(); s != nil {
		return s
	}
	i.mu.RLock()
	s := &snapshot{objs: make([]api.Object, 0, len(i.items))}
	for _, o := range i.items {
		s.objs = append(s.objs, o)
	}
	// Store only if no change came in meanwhile (a change clears snap under mu).
	if !i.snap.CompareAndSwap(nil, s) {
		s = i.snap.Load()
	}
	i.mu.RUnlock()
	return s
}

// Len is the number of cached objects.
func (i *Informer) Len() int {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return len(i.items)
}

// Get returns the cached object with key "namespace/name" (or "name"), or nil.
func (i *Informer) Get(key string) api.Object {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.items[key]
}

// ByIndex returns the cached objects whose index value is value: IndexNamespace with a
// namespace, IndexOwner or IndexController with a UID, IndexNode with a node name. An
// index the kind does not have returns nothing.
func (i *Informer) ByIndex(name, value string) []api.Object {
	i.mu.RLock()
	defer i.mu.RUnlock()
	set := i.indexes[name].values[value]
	out := make([]api.Object, 0, len(set))
	for _, o := range set {
		out = append(out, o)
	}
	return out
}

// Run lists and watches until ctx is cancelled, retrying with back-off. It may be
// called once.
func (i *Informer) Run(ctx context.Context) {
	if !i.started.CompareAndSwap(false, true) {
		panic("client: informer for " + i.kind.Resource + " run twice")
	}
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
	i.dispatch.Lock()
	defer i.dispatch.Unlock()
	i.mu.Lock()
	old := i.items
	i.items = fresh
	i.indexes = newIndexes(i.kind)
	for k, o := range fresh {
		i.indexes.add(k, o)
	}
	i.snap.Store(nil)
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
	ws, err := i.c.openWatch(ctx, i.kind, i.ns, opts)
	if err != nil {
		return rv, err
	}
	defer ws.Close()
	i.streams.Add(1)
	defer i.streams.Add(-1)
	for ev, ok := ws.Next(); ok; ev, ok = ws.Next() {
		if ev.Err != nil {
			return rv, ev.Err
		}
		m := ev.Object.GetObjectMeta()
		rv = m.ResourceVersion
		if ev.Type == "BOOKMARK" {
			continue
		}
		i.apply(ev.Type == "DELETED", m.Key(), ev.Object)
	}
	return rv, ctx.Err()
}

// apply puts one watched change into the cache and tells the handlers.
func (i *Informer) apply(deleted bool, key string, o api.Object) {
	i.dispatch.Lock()
	defer i.dispatch.Unlock()
	i.mu.Lock()
	prev := i.items[key]
	if prev != nil {
		i.indexes.remove(key, prev)
	}
	if deleted {
		delete(i.items, key)
	} else {
		i.items[key] = o
		i.indexes.add(key, o)
	}
	i.snap.Store(nil)
	i.mu.Unlock()
	switch {
	case deleted:
		if prev != nil {
			i.notifyDelete(o)
		}
	case prev == nil:
		i.notifyAdd(o)
	default:
		i.notifyUpdate(prev, o)
	}
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
