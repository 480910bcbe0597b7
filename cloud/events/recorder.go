// Package events records Events about API objects for the components that act on
// them (scheduler, agent, controllers), the way Kubernetes's event recorder does:
// without blocking the caller, and counting repeats in one Event rather than writing
// another.
package events

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// Event aggregation and retention, as Kubernetes's defaults.
const (
	aggregationWindow = 10 * time.Minute
	// TTL is how long an event is kept after it was last seen.
	TTL = time.Hour
	// QueueSize is how many events a Recorder holds before Run writes them; more are
	// dropped.
	QueueSize = 256
)

// Clock is the time source that stamps events.
type Clock interface {
	Now() time.Time
}

// Recorder writes Events about objects for one component. Event never blocks: events
// wait in a small queue that Run drains, and are dropped (with a log line) when the
// queue is full. A repeat of an event (same object, type, reason and message) within
// ten minutes increments the count of the first rather than creating another. It is
// safe for concurrent use; nothing is written until Run is called.
type Recorder struct {
	cl        *client.Client
	component string
	ch        chan *api.Event
	// Host names the machine in the events' source; NewRecorder sets the host name.
	// Change it before the first Event.
	Host string
	// Logger receives the dropped and failed events; nil means none. Set it before Run.
	Logger *zap.Logger
	// Clock stamps events; nil means the wall clock. Set it before Run.
	Clock Clock

	mu   sync.Mutex
	seen map[string]*seenEvent // by aggregation key; only Run's goroutine uses it
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
	return &Recorder{cl: cl, component: component, Host: host, ch: make(chan *api.Event, QueueSize), seen: map[string]*seenEvent{}}
}

func (r *Recorder) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
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
	now := api.NewTime(r.now())
	e.FirstTimestamp, e.LastTimestamp = now, now
	select {
	case r.ch <- e:
	default:
		r.logger().Warn("event queue full; dropping event", zap.String("object", ref.Kind+"/"+m.Key()), zap.String("reason", reason))
	}
}

// Run writes queued events until ctx is cancelled.
func (r *Recorder) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-r.ch:
			if err := r.write(ctx, e); err != nil && ctx.Err() == nil {
				r.logger().Warn("writing event failed", zap.String("reason", e.Reason), zap.Error(err))
			}
		}
	}
}

func aggregationKey(e *api.Event) string {
	o := e.InvolvedObject
	return o.Kind + "\x00" + o.Namespace + "\x00" + o.Name + "\x00" + o.UID + "\x00" + e.Type + "\x00" + e.Reason + "\x00" + e.Message
}

func (r *Recorder) write(ctx context.Context, e *api.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := aggregationKey(e)
	at := e.LastTimestamp.Time
	if s, ok := r.seen[key]; ok && at.Sub(s.last) < aggregationWindow {
		k, _ := api.LookupKind("events")
		o, err := r.cl.Get(ctx, k, s.namespace, s.name)
		if err == nil {
			old := o.(*api.Event)
			old.Count++
			old.LastTimestamp = e.LastTimestamp
			if _, err = r.cl.Update(ctx, old); err == nil {
				s.count, s.last = old.Count, at
				return nil
			}
		}
		if !client.IsNotFound(err) {
			return err
		}
		// Deleted (aged out, or by hand): start a new one.
	}
	e.Name = fmt.Sprintf("%s.%x", e.InvolvedObject.Name, at.UnixNano())
	created, err := r.cl.Create(ctx, e)
	if client.IsAlreadyExists(err) {
		e.Name = fmt.Sprintf("%s.%x", e.InvolvedObject.Name, time.Now().UnixNano())
		created, err = r.cl.Create(ctx, e)
	}
	if err != nil {
		return err
	}
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
	k, _ := api.LookupKind("events")
	l, err := cl.ListAll(ctx, k, "", client.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range l.Items {
		e := o.(*api.Event)
		last := e.LastTimestamp
		if last == nil {
			last = e.CreationTimestamp
		}
		if last == nil || now.Sub(last.Time) <= olderThan {
			continue
		}
		if _, err := cl.Delete(ctx, k, e.Namespace, e.Name); err != nil && !client.IsNotFound(err) {
			return n, err
		}
		n++
	}
	return n, nil
}
