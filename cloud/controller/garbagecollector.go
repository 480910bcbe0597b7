package controller

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	Register("garbage-collector", func(d Deps) Runner { return NewGarbageCollector(d) })
}

// GarbageCollector deletes objects whose owners are all gone, as Kubernetes's
// garbage collector does: an owner reference is dangling when no object of its kind
// and name exists, or one exists with another UID. It also carries out the Orphan
// propagation policy: for an object marked for deletion with the finalizer "orphan",
// it removes the references to that object from its dependents, then the finalizer,
// which lets the API server remove the object.
//
// It reads every registered kind from the factory's shared informers, and finds an
// owner's dependents through their owner index.
type GarbageCollector struct {
	base
	informers map[string]*client.Informer // by resource
}

// NewGarbageCollector returns a collector watching every kind through d's factory.
func NewGarbageCollector(d Deps) *GarbageCollector {
	gc := &GarbageCollector{base: newBase(d, "", 2), informers: map[string]*client.Informer{}}
	for _, k := range api.Kinds() {
		gc.informers[k.Resource] = d.Factory.Informer(k)
	}
	for _, k := range api.Kinds() {
		gc.informers[k.Resource].AddHandler(client.Handler{
			OnAdd:    func(o api.Object) { gc.observe(k, nil, o) },
			OnUpdate: func(old, o api.Object) { gc.observe(k, old, o) },
			OnDelete: func(o api.Object) { gc.forget(o) },
		})
	}
	return gc
}

// Queue keys are "check|RESOURCE|KEY" (does this dependent still have an owner?),
// "orphan|RESOURCE|KEY" (strip references to this owner, then its finalizer) and
// "foreground|RESOURCE|KEY" (delete this owner's dependents, then its finalizer).
const (
	gcCheck      = "check"
	gcOrphan     = "orphan"
	gcForeground = "foreground"
)

func gcKey(op string, k *api.KindInfo, o api.Object) string {
	return op + "|" + k.Resource + "|" + o.GetObjectMeta().Key()
}

// Run works until ctx is cancelled.
func (gc *GarbageCollector) Run(ctx context.Context) { gc.runQueue(ctx, gc.process) }

// observe queues what an added or changed object calls for.
func (gc *GarbageCollector) observe(k *api.KindInfo, old, o api.Object) {
	if old != nil {
		gc.requeueOwners(old, o)
	}
	m := o.GetObjectMeta()
	if len(m.OwnerReferences) > 0 {
		gc.queue.Add(gcKey(gcCheck, k, o))
	}
	if m.DeletionTimestamp != nil && m.HasFinalizer(api.FinalizerOrphan) {
		gc.queue.Add(gcKey(gcOrphan, k, o))
	}
	if m.DeletionTimestamp != nil && m.HasFinalizer(api.FinalizerForegroundDeletion) {
		gc.queue.Add(gcKey(gcForeground, k, o))
	}
}

// forget queues the dependents of a deleted object, whose owner it was, and the
// foreground deletions it may have held up.
func (gc *GarbageCollector) forget(o api.Object) {
	for _, d := range gc.dependents(o.GetObjectMeta().UID) {
		gc.queue.Add(gcKey(gcCheck, d.kind, d.obj))
	}
	gc.requeueOwners(o, nil)
}

// dependent is a cached object with its kind.
type dependent struct {
	kind *api.KindInfo
	obj  api.Object
}

// dependents returns the cached objects of every kind with an owner reference to uid.
func (gc *GarbageCollector) dependents(uid string) []dependent {
	var out []dependent
	for _, inf := range gc.informers {
		for _, o := range inf.ByIndex(client.IndexOwner, uid) {
			out = append(out, dependent{inf.Kind(), o})
		}
	}
	return out
}

func (gc *GarbageCollector) process(ctx context.Context, key string) error {
	op, rest, _ := strings.Cut(key, "|")
	resource, objKey, _ := strings.Cut(rest, "|")
	inf := gc.informers[resource]
	if inf == nil {
		return nil
	}
	o := inf.Get(objKey)
	if o == nil {
		return nil // gone already
	}
	k := inf.Kind()
	switch op {
	case gcOrphan:
		return gc.orphan(ctx, k, o)
	case gcForeground:
		return gc.foreground(ctx, k, o)
	}
	return gc.check(ctx, k, o)
}

// check deletes o when every owner it names is gone, and drops the references to
// the missing ones when some owner remains.
func (gc *GarbageCollector) check(ctx context.Context, k *api.KindInfo, o api.Object) error {
	m := o.GetObjectMeta()
	if m.DeletionTimestamp != nil || len(m.OwnerReferences) == 0 {
		return nil
	}
	var alive []api.OwnerReference
	for _, ref := range m.OwnerReferences {
		ok, err := gc.ownerExists(ctx, m.Namespace, ref)
		if err != nil {
			return err
		}
		if ok {
			alive = append(alive, ref)
		}
	}
	switch {
	case len(alive) == len(m.OwnerReferences):
		return nil
	case len(alive) == 0:
		gc.log.Info("deleting an object whose owners are gone",
			zap.String("resource", k.Resource), zap.String("object", m.Key()))
		_, err := gc.client.Delete(ctx, k, m.Namespace, m.Name)
		if client.IsNotFound(err) {
			return nil
		}
		return err
	default:
		next := api.DeepCopy(o)
		next.GetObjectMeta().OwnerReferences = alive
		_, err := gc.client.Update(ctx, next)
		if client.IsNotFound(err) {
			return nil
		}
		return err // a conflict retries with the newer object
	}
}

// ownerExists reports whether the object ref names exists with ref's UID. The
// informer's cache answers yes; a no is confirmed with the API, since the cache may
// not have seen an owner created a moment ago. A reference to a kind cloudbox does
// not serve counts as alive: deleting on a guess would lose data.
func (gc *GarbageCollector) ownerExists(ctx context.Context, namespace string, ref api.OwnerReference) (bool, error) {
	k, err := api.KindFor(ref.APIVersion, ref.Kind)
	if err != nil {
		return true, nil
	}
	ns := ""
	if k.Namespaced {
		if namespace == "" {
			return true, nil // a cluster-scoped object cannot be owned by a namespaced one
		}
		ns = namespace
	}
	key := ref.Name
	if ns != "" {
		key = ns + "/" + ref.Name
	}
	if inf := gc.informers[k.Resource]; inf != nil {
		if o := inf.Get(key); o != nil && o.GetObjectMeta().UID == ref.UID {
			return true, nil
		}
	}
	o, err := gc.client.Get(ctx, k, ns, ref.Name)
	if client.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return o.GetObjectMeta().UID == ref.UID, nil
}

// orphan removes the references to owner from its dependents, then owner's orphan
// finalizer. Dependents are listed from the API rather than the caches, so one
// created just before the delete is not missed.
func (gc *GarbageCollector) orphan(ctx context.Context, ok *api.KindInfo, owner api.Object) error {
	om := owner.GetObjectMeta()
	if om.DeletionTimestamp == nil || !om.HasFinalizer(api.FinalizerOrphan) {
		return nil
	}
	for _, k := range api.Kinds() {
		ns := ""
		if ok.Namespaced {
			if !k.Namespaced {
				continue
			}
			ns = om.Namespace
		}
		l, err := gc.client.ListAll(ctx, k, ns, client.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing %s: %w", k.Resource, err)
		}
		for _, d := range l.Items {
			if ownedBy(d, om.UID) {
				if err := gc.stripOwner(ctx, k, d, om.UID); err != nil {
					return err
				}
			}
		}
	}
	gc.log.Info("orphaned the dependents", zap.String("resource", ok.Resource), zap.String("object", om.Key()))
	return updateLive(ctx, gc.client, ok, om.Namespace, om.Name, om.UID, func(o api.Object) bool {
		return o.GetObjectMeta().RemoveFinalizer(api.FinalizerOrphan)
	})
}

func ownedBy(o api.Object, uid string) bool {
	for _, ref := range o.GetObjectMeta().OwnerReferences {
		if ref.UID == uid {
			return true
		}
	}
	return false
}

func (gc *GarbageCollector) stripOwner(ctx context.Context, k *api.KindInfo, d api.Object, uid string) error {
	dm := d.GetObjectMeta()
	return updateLive(ctx, gc.client, k, dm.Namespace, dm.Name, dm.UID, func(o api.Object) bool {
		m := o.GetObjectMeta()
		var keep []api.OwnerReference
		for _, ref := range m.OwnerReferences {
			if ref.UID != uid {
				keep = append(keep, ref)
			}
		}
		changed := len(keep) != len(m.OwnerReferences)
		m.OwnerReferences = keep
		return changed
	})
}

// updateLive reads the object from the API, applies change and writes it back if
// change reports a change, starting again on a conflict. An object that is gone, or
// was re-created with a UID other than uid, is left alone.
func updateLive(ctx context.Context, cl *client.Client, k *api.KindInfo, namespace, name, uid string, change func(api.Object) bool) error {
	for {
		o, err := cl.Get(ctx, k, namespace, name)
		if client.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if uid != "" && o.GetObjectMeta().UID != uid {
			return nil
		}
		if !change(o) {
			return nil
		}
		_, err = cl.Update(ctx, o)
		if client.IsConflict(err) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if client.IsNotFound(err) {
			return nil
		}
		return err
	}
}
