package controller

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// Adoption and release, as Kubernetes's ControllerRefManager does them: an owner
// (a ReplicaSet of its pods, a Deployment of its ReplicaSets) takes the orphans its
// selector matches and lets go of what it controls but no longer matches.

// OwnerRef returns a controller owner reference to obj, whose kind must be registered.
func OwnerRef(obj api.Object) api.OwnerReference {
	k, ok := api.KindOf(obj)
	if !ok {
		panic(fmt.Sprintf("controller: owner reference to an object of an unregistered type %T", obj))
	}
	m := obj.GetObjectMeta()
	t := true
	return api.OwnerReference{APIVersion: k.APIVersion(), Kind: k.Kind, Name: m.Name, UID: m.UID, Controller: &t, BlockOwnerDeletion: &t}
}

// claim returns the objects of candidates (of owner's namespace) that owner
// controls and sel matches, after adopting the orphans sel matches and adoptable
// allows, and releasing what owner controls that sel no longer matches. Objects
// being deleted are neither adopted nor released. A failed write does not stop the
// others: claim returns what it holds with the errors joined.
func claim[T api.Object](ctx context.Context, cl *client.Client, log *zap.Logger, owner api.Object, sel api.Selector,
	candidates []T, adoptable func(T) bool) ([]T, error) {
	uid := owner.GetObjectMeta().UID
	var out []T
	var errs []error
	for _, o := range candidates {
		m := o.GetObjectMeta()
		ref := m.ControllerRef()
		matches := sel.Matches(m.Labels)
		switch {
		case ref != nil && ref.UID == uid && matches:
			out = append(out, o)
		case ref != nil && ref.UID == uid:
			if m.DeletionTimestamp == nil {
				errs = append(errs, release(ctx, cl, log, owner, o))
			}
		case ref == nil && matches && m.DeletionTimestamp == nil && adoptable(o):
			adopted, err := adopt(ctx, cl, log, owner, o)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, adopted)
		}
	}
	return out, errors.Join(errs...)
}

// adopt makes owner o's controller.
func adopt[T api.Object](ctx context.Context, cl *client.Client, log *zap.Logger, owner api.Object, o T) (T, error) {
	next := api.DeepCopyOf(o)
	m := next.GetObjectMeta()
	m.OwnerReferences = append(m.OwnerReferences, OwnerRef(owner))
	out, err := client.Update(ctx, cl, next)
	if err != nil {
		return out, fmt.Errorf("adopting %s %s: %w", api.KindOfType[T]().Singular, m.Key(), err)
	}
	log.Info("adopted", zap.String("owner", owner.GetObjectMeta().Key()), zap.String(api.KindOfType[T]().Singular, m.Name))
	return out, nil
}

// release drops o's references to owner; o already gone is no error.
func release[T api.Object](ctx context.Context, cl *client.Client, log *zap.Logger, owner api.Object, o T) error {
	uid := owner.GetObjectMeta().UID
	next := api.DeepCopyOf(o)
	m := next.GetObjectMeta()
	var refs []api.OwnerReference
	for _, r := range m.OwnerReferences {
		if r.UID != uid {
			refs = append(refs, r)
		}
	}
	m.OwnerReferences = refs
	if _, err := client.Update(ctx, cl, next); err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("releasing %s %s: %w", api.KindOfType[T]().Singular, m.Key(), err)
	}
	log.Info("released", zap.String("owner", owner.GetObjectMeta().Key()), zap.String(api.KindOfType[T]().Singular, m.Name))
	return nil
}
