// Package events records Events about API objects for the components that act on
// them (scheduler, agent, controllers), the way Kubernetes's event recorder does:
// without blocking the caller, and counting repeats in one Event rather than writing
// another.
package events

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// Event aggregation and retention, as Kubernetes's defaults.
const (
	aggregationWindow = 10 * time.Minute
	// TTL is how long an event is kept after it was last seen.
	TTL = time.Hour
	// QueueSize is how many events a Recorder holds before Run writes them; more are
	// dropped. Kubernetes's broadcaster holds as many: a burst of a hundred pods
	// records four or five events each before the first is written.
	QueueSize = 1000
)

// Recorder writes Events about objects for one component. Event never blocks: events
// wait in a queue that Run drains, and are dropped when the queue is full (logged
// once per reason every DropReportWindow). A repeat of an event (same object, type,
// reason and message) within ten minutes increments the count of the first rather
// than creating another. It is safe for concurrent use; nothing is written until Run
// is called.
type Recorder struct {
	cl        *client.Client
	component string
	queue     *writeQueue
	drops     *dropCounter
	// Host names the machine in the events' source; NewRecorder sets the host name.
	// Change it before the first Event.
	Host string
	// Logger receives the dropped and failed events; nil means none. Set it before Run.
	Logger *zap.Logger
	// Clock stamps events and times the drop reports; nil means the wall clock. Set
	// it before the first Event.
	Clock clock.Clock

	mu   sync.Mutex
	seen map[string]*seenEvent // by aggregation key
}

type seenEvent struct {
	namespace, name string
	count           int32
	first, last     time.Time
}

// NewRecorder returns a recorder that writes through cl and whose events name
// component, on this host, as their source.
func NewRecorder(cl *client.Client, component string) *Recorder {
	host, _ := os.Hostname()
	return &Recorder{cl: cl, component: component, Host: host, queue: newWriteQueue(), drops: newDropCounter(),
		seen: map[string]*seenEvent{}}
}

func (r *Recorder) clock() clock.Clock {
	if r.Clock == nil {
		return clock.Real{}
	}
	return r.Clock
}

func (r *Recorder) logger() *zap.Logger {
	if r.Logger == nil {
		return zap.NewNop()
	}
	return r.Logger
}

// Event records that something of type (api.EventNormal or api.EventWarning)
// happened to obj, for reason, with a message formatted from messageFmt and args. obj
// must be of a registered kind; a nil recorder records nothing.
func (r *Recorder) Event(obj api.Object, typ, reason, messageFmt string, args ...any) {
	if r == nil || obj == nil {
		return
	}
	m := obj.GetObjectMeta()
	ref := api.ObjectReference{Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion}
	if k, ok := api.KindOf(obj); ok {
		ref.Kind, ref.APIVersion = k.Kind, k.APIVersion()
	}
	ns := m.Namespace
	if ns == "" {
		ns = "default" // where cluster-scoped objects' events live, as in Kubernetes
	}
	e := &api.Event{
		TypeMeta:       api.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta:     api.ObjectMeta{Namespace: ns},
		InvolvedObject: ref,
		Reason:         reason,
		Message:        fmt.Sprintf(messageFmt, args...),
		Type:           typ,
		Source:         api.EventSource{Component: r.component, Host: r.Host},
		Count:          1,
	}
	now := api.NewTime(r.clock().Now())
	e.FirstTimestamp, e.LastTimestamp = now, now
	if !r.queue.push(queued{e, aggregationKey(e)}) {
		r.drops.add(reason)
	}
}

// Run writes queued events until ctx is cancelled, and returns once its writes
// and its drop reports have stopped.
func (r *Recorder) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.drops.report(ctx, r.clock(), DropReportWindow, r.logger())
	}()
	r.queue.run(ctx, func(ctx context.Context, it queued) {
		if err := r.write(ctx, it.e, it.key); err != nil && ctx.Err() == nil {
			r.logger().Warn("writing event failed", zap.String("reason", it.e.Reason), zap.Error(err))
		}
	})
	wg.Wait()
}

func aggregationKey(e *api.Event) string {
	o := e.InvolvedObject
	return o.Kind + "\x00" + o.Namespace + "\x00" + o.Name + "\x00" + o.UID + "\x00" + e.Type + "\x00" + e.Reason + "\x00" + e.Message
}

// write creates e, or counts it in the event it repeats. The queue writes the
// events of one key one at a time, so a repeat does not race the lookup in seen and
// the write that follows.
func (r *Recorder) write(ctx context.Context, e *api.Event, key string) error {
	at := e.LastTimestamp.Time
	r.mu.Lock()
	s, ok := r.seen[key]
	r.mu.Unlock()
	if ok && at.Sub(s.last) < aggregationWindow {
		old, err := client.Get[*api.Event](ctx, r.cl, s.namespace, s.name)
		if err == nil {
			old.Count++
			old.LastTimestamp = e.LastTimestamp
			if _, err = client.Update(ctx, r.cl, old); err == nil {
				r.mu.Lock()
				s.count, s.last = old.Count, at
				r.mu.Unlock()
				return nil
			}
		}
		if !client.IsNotFound(err) {
			return err
		}
		// Deleted (aged out, or by hand): start a new one.
	}
	// Named as Kubernetes names them; the timestamps are whole seconds, so the name
	// takes the clock's nanoseconds, and a random suffix should that be taken too
	// (another recorder's event about the same object, or a fake clock).
	e.Name = fmt.Sprintf("%s.%x", e.InvolvedObject.Name, r.clock().Now().UnixNano())
	created, err := r.cl.Create(ctx, e)
	if client.IsAlreadyExists(err) {
		e.Name = fmt.Sprintf("%s.%x", e.InvolvedObject.Name, rand.Uint64())
		created, err = r.cl.Create(ctx, e)
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[key] = &seenEvent{namespace: created.GetObjectMeta().Namespace, name: created.GetObjectMeta().Name, count: 1, first: at, last: at}
	// Keep the cache as small as the window it serves.
	for k, s := range r.seen {
		if at.Sub(s.last) >= aggregationWindow {
			delete(r.seen, k)
		}
	}
	return nil
}

// CleanupEvents deletes the events, in every namespace, last seen more than olderThan
// before now, and returns how many it deleted.
func CleanupEvents(ctx context.Context, cl *client.Client, olderThan time.Duration, now time.Time) (int, error) {
	events, err := client.ListTyped[*api.Event](ctx, cl, "", client.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range events {
		last := e.LastTimestamp
		if last == nil {
			last = e.CreationTimestamp
		}
		if last == nil || now.Sub(last.Time) <= olderThan {
			continue
		}
		if _, err := client.Delete[*api.Event](ctx, cl, e.Namespace, e.Name); err != nil && !client.IsNotFound(err) {
			return n, err
		}
		n++
	}
	return n, nil
}
