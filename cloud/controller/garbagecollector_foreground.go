package controller

import (
	"context"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// requeueOwners queues the foreground deletion of every owner that was, whose
// references before names and now (nil when o is gone) no longer does: one of
// its dependents may have been what it waited for.
func (gc *GarbageCollector) requeueOwners(before, now api.Object) {
	bm := before.GetObjectMeta()
	for _, ref := range bm.OwnerReferences {
		if now != nil && ownedBy(now, ref.UID) {
			continue
		}
		k, err := api.KindFor(ref.APIVersion, ref.Kind)
		if err != nil {
			continue
		}
		key := ref.Name
		if k.Namespaced {
			key = bm.Namespace + "/" + ref.Name
		}
		gc.queue.Add(gcForeground + "|" + k.Resource + "|" + key)
	}
}

// foreground carries out the Foreground propagation policy for owner, marked for
// deletion with the finalizer "foregroundDeletion", as Kubernetes's garbage
// collector does: each dependent is deleted (in the foreground itself when it has
// dependents of its own, so a Deployment waits for its pods, not only its
// ReplicaSets), or only loses its reference when another owner keeps it; once no
// dependent whose reference says blockOwnerDeletion remains, the finalizer goes
// and the API server removes the owner. Dependents come from the informers' index:
// their deletions requeue the owner.
func (gc *GarbageCollector) foreground(ctx context.Context, ok *api.KindInfo, owner api.Object) error {
	om := owner.GetObjectMeta()
	if om.DeletionTimestamp == nil || !om.HasFinalizer(api.FinalizerForegroundDeletion) {
		return nil
	}
	blocking := 0
	for _, dep := range gc.dependents(om.UID) {
		k, d := dep.kind, dep.obj
		dm := d.GetObjectMeta()
		ref := ownerRefTo(d, om.UID)
		if ref == nil {
			continue
		}
		if ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
			blocking++
		}
		if dm.DeletionTimestamp != nil {
			continue
		}
		kept, err := gc.keptByAnother(ctx, d, om.UID)
		if err != nil {
			return err
		}
		if kept {
			if ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
				blocking--
			}
			if err := gc.stripOwner(ctx, k, d, om.UID); err != nil {
				return err
			}
			continue
		}
		policy := api.PropagationBackground
		if len(gc.dependents(dm.UID)) > 0 {
			policy = api.PropagationForeground
		}
		gc.log.Info("deleting a dependent of an owner deleted in the foreground", zap.String("resource", k.Resource),
			zap.String("object", dm.Key()), zap.String("owner", om.Key()), zap.String("policy", policy))
		if _, err := gc.client.DeleteWithOptions(ctx, k, dm.Namespace, dm.Name, client.DeleteOptions{PropagationPolicy: policy}); err != nil && !client.IsNotFound(err) {
			return err
		}
	}
	if blocking > 0 {
		return nil // the dependents' deletions queue the owner again
	}
	gc.log.Info("dependents deleted; removing the owner", zap.String("resource", ok.Resource), zap.String("object", om.Key()))
	return updateLive(ctx, gc.client, ok, om.Namespace, om.Name, om.UID, func(o api.Object) bool {
		return o.GetObjectMeta().RemoveFinalizer(api.FinalizerForegroundDeletion)
	})
}

// keptByAnother reports whether d has an owner other than uid that exists.
func (gc *GarbageCollector) keptByAnother(ctx context.Context, d api.Object, uid string) (bool, error) {
	dm := d.GetObjectMeta()
	for _, ref := range dm.OwnerReferences {
		if ref.UID == uid {
			continue
		}
		alive, err := gc.ownerExists(ctx, dm.Namespace, ref)
		if err != nil {
			return false, err
		}
		if alive {
			return true, nil
		}
	}
	return false, nil
}

// ownerRefTo returns o's reference to the owner with uid, nil if it has none.
func ownerRefTo(o api.Object, uid string) *api.OwnerReference {
	refs := o.GetObjectMeta().OwnerReferences
	for i := range refs {
		if refs[i].UID == uid {
			return &refs[i]
		}
	}
	return nil
}
