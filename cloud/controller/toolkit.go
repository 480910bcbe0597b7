package controller

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// base is the scaffold a queue-driven controller is built on. It owns the
// controller's work queue, its event recorder, its workers and every goroutine they
// start (the queue's delayed adds included), and Run returns only once all of them
// have stopped. A controller embeds it, adds its handlers to the factory's informers
// when it is made, and runs base.runQueue with its sync function.
type base struct {
	client  *client.Client
	factory *client.Factory
	clock   Clock
	log     *zap.Logger
	// recorder writes the controller's events; nil for one that records none (its
	// Event is then a no-op).
	recorder *Recorder
	queue    *Queue
	workers  int
}

// newBase returns the scaffold of a controller with workers workers (at least one).
// A component other than "" names the source of the controller's events; "" means
// the controller records none.
func newBase(d Deps, component string, workers int) base {
	d = d.withDefaults()
	b := base{client: d.Client, factory: d.Factory, clock: d.Clock, log: d.Logger, queue: NewQueue(), workers: max(workers, 1)}
	b.queue.Clock = d.Clock
	if component != "" {
		b.recorder = newRecorder(d, component)
	}
	return b
}

// runQueue runs the recorder, waits for the factory's informers to sync, and
// reconciles the queued keys with syncFn on the workers until ctx ends; then it shuts
// the queue down and waits for everything it started.
func (b *base) runQueue(ctx context.Context, syncFn func(context.Context, string) error) {
	var wg sync.WaitGroup
	goFn := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	if b.recorder != nil {
		goFn(func() { b.recorder.Run(ctx) })
	}
	if b.factory.WaitForSync(ctx) {
		for range b.workers {
			goFn(func() { b.queue.Work(ctx, b.log, syncFn) })
		}
	}
	<-ctx.Done()
	b.queue.ShutDown()
	wg.Wait()
	b.queue.Wait()
}

// enqueue queues o's key.
func (b *base) enqueue(o api.Object) { b.queue.Add(o.GetObjectMeta().Key()) }

// enqueueController queues the object of kind ownerKind ("ReplicaSet") that controls
// o, by o's controller reference. It reports whether o has a controller at all.
func (b *base) enqueueController(ownerKind string, o api.Object) (controlled bool) {
	m := o.GetObjectMeta()
	ref := m.ControllerRef()
	if ref == nil {
		return false
	}
	if ref.Kind == ownerKind {
		b.queue.Add(m.Namespace + "/" + ref.Name)
	}
	return true
}

// enqueueOwnerOrAdopters queues o's controller of kind ownerKind; for an orphan not
// being deleted, it queues every owner of o's namespace whose selector matches o's
// labels instead, since one of them may adopt it.
func enqueueOwnerOrAdopters[T api.Object](b *base, ownerKind string, o api.Object, owners client.Typed[T], selector func(T) *api.LabelSelector) {
	m := o.GetObjectMeta()
	if b.enqueueController(ownerKind, o) || m.DeletionTimestamp != nil {
		return
	}
	for _, owner := range owners.InNamespace(m.Namespace) {
		if sel, err := selector(owner).AsSelector(); err == nil && sel.Matches(m.Labels) {
			b.enqueue(owner)
		}
	}
}

// onChange is a handler that calls f with the object of every add, update and
// delete.
func onChange[T api.Object](f func(T)) client.TypedHandler[T] {
	return client.TypedHandler[T]{OnAdd: f, OnUpdate: func(_, o T) { f(o) }, OnDelete: f}
}

// enqueueAll queues every object of inf.
func enqueueAll[T api.Object](b *base, inf client.Typed[T]) {
	for _, o := range inf.List() {
		b.enqueue(o)
	}
}
