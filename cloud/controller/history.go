package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// The ControllerRevisions of DaemonSets and StatefulSets: one per distinct pod
// template a set has had, named SET-HASH and owned by the set, numbered in the order
// the templates were last current. They are what `rollout history` lists and what
// `rollout undo` copies a template back from. A Deployment keeps its history in its
// ReplicaSets instead.

// revisionHash names a template's revision. The collision count is mixed in only
// once there has been a collision, so that every name made before one (and the
// pods labelled with it) stays as it was.
func revisionHash(t *api.PodTemplateSpec, collisionCount *int32) string {
	b, _ := json.Marshal(t)
	h := fnv.New32a()
	h.Write(b)
	if collisionCount != nil && *collisionCount > 0 {
		fmt.Fprint(h, *collisionCount)
	}
	return fmt.Sprintf("%08x", h.Sum32())
}

// errRevisionNameTaken says the name a new revision should have belongs to another
// revision (another template, or a set of the same name deleted with its revisions
// orphaned): the owner counts a collision in its status and tries again with
// another hash.
var errRevisionNameTaken = errors.New("the revision's name is taken by another revision")

// countCollision records in owner's status that the name of its next revision was
// taken (the collision count that collisionCount points to grows by one), so that
// the next sync hashes the template to another name. It returns cause, wrapped.
func countCollision[T api.Object](ctx context.Context, cl *client.Client, owner T, collisionCount func(T) **int32, cause error) error {
	next := api.DeepCopyOf(owner)
	cc := collisionCount(next)
	n := api.Int32Value(*cc, 0) + 1
	*cc = &n
	if _, err := cl.UpdateStatus(ctx, next); err != nil {
		return fmt.Errorf("%w; counting the collision: %w", cause, err)
	}
	return fmt.Errorf("%w; collision count now %d", cause, n)
}

// revisionHistory keeps the ControllerRevisions of one controller's sets, read
// from the factory's informer (which the controller waits for with its others).
type revisionHistory struct {
	client    *client.Client
	log       *zap.Logger
	revisions client.Typed[*api.ControllerRevision]
}

// newRevisionHistory watches every ControllerRevision and queues the set of kind
// ownerKind ("DaemonSet") that controls one that changes, so that a revision deleted
// by hand is made again.
func newRevisionHistory(b *base, ownerKind string) *revisionHistory {
	h := &revisionHistory{client: b.client, log: b.log, revisions: client.For[*api.ControllerRevision](b.factory)}
	h.revisions.AddHandler(onChange(func(r *api.ControllerRevision) { b.enqueueController(ownerKind, r) }))
	return h
}

// owned returns the revisions owner controls, lowest revision first.
func (h *revisionHistory) owned(owner api.Object) []*api.ControllerRevision {
	out := h.revisions.ControlledBy(owner.GetObjectMeta().UID)
	sortRevisions(out)
	return out
}

func sortRevisions(revs []*api.ControllerRevision) {
	sort.Slice(revs, func(i, j int) bool {
		if revs[i].Revision != revs[j].Revision {
			return revs[i].Revision < revs[j].Revision
		}
		return revs[i].Name < revs[j].Name
	})
}

// revisionHashOf is the hash a revision of the set named set stands for: the end of
// its name (which, unlike its labels, cannot change), else its hash label.
func revisionHashOf(set string, r *api.ControllerRevision) string {
	if h, ok := strings.CutPrefix(r.Name, set+"-"); ok && h != "" {
		return h
	}
	return r.Labels[api.LabelControllerRevisionHash]
}

// revisionHolds says whether r records the template whose JSON is data. Templates
// compare as JSON, as they are stored and hashed.
func revisionHolds(r *api.ControllerRevision, data []byte) bool {
	if r.Data == nil {
		return false
	}
	b, _ := json.Marshal(r.Data)
	return string(b) == string(data)
}

// current returns the revision of owner's template t, which becomes the newest of
// revs (owner's revisions, from owned): one that already holds t and is not the
// newest is renumbered to be, as Kubernetes does, rather than copied; otherwise a
// revision is made, numbered one past the highest. A revision's change cause is the
// owner's at the time it is made. The error wraps errRevisionNameTaken when the name
// for a new revision is taken.
func (h *revisionHistory) current(ctx context.Context, owner api.Object, t *api.PodTemplateSpec, collisionCount *int32, revs []*api.ControllerRevision) (*api.ControllerRevision, error) {
	m := owner.GetObjectMeta()
	data, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encoding the template of %s: %w", m.Key(), err)
	}
	var newest int64
	var match *api.ControllerRevision
	for _, r := range revs {
		newest = max(newest, r.Revision)
		if revisionHolds(r, data) && (match == nil || r.Revision > match.Revision) {
			match = r
		}
	}
	if match != nil {
		return h.renumber(ctx, m, match, revs)
	}
	r := &api.ControllerRevision{TypeMeta: api.TypeMeta{APIVersion: "apps/v1", Kind: "ControllerRevision"}, Revision: newest + 1}
	r.Namespace, r.Name = m.Namespace, m.Name+"-"+revisionHash(t, collisionCount)
	r.Labels = map[string]string{}
	for k, v := range t.Metadata.Labels {
		r.Labels[k] = v
	}
	r.Labels[api.LabelControllerRevisionHash] = revisionHash(t, collisionCount)
	if cause := m.Annotations[api.AnnotationChangeCause]; cause != "" {
		r.Annotations = map[string]string{api.AnnotationChangeCause: cause}
	}
	r.OwnerReferences = []api.OwnerReference{OwnerRef(owner)}
	// A copy, from the JSON it is compared by.
	r.Data = &api.PodTemplateSpec{}
	if err := json.Unmarshal(data, r.Data); err != nil {
		return nil, fmt.Errorf("copying the template of %s: %w", m.Key(), err)
	}
	out, err := client.Create(ctx, h.client, r)
	if client.IsAlreadyExists(err) {
		ex, gerr := client.Get[*api.ControllerRevision](ctx, h.client, r.Namespace, r.Name)
		if gerr != nil {
			return nil, fmt.Errorf("reading controller revision %s: %w", r.Key(), gerr)
		}
		// The cache had not seen it yet.
		if ex.IsControlledBy(m.UID) && revisionHolds(ex, data) {
			return h.renumber(ctx, m, ex, revs)
		}
		return nil, fmt.Errorf("controller revision %s: %w", r.Key(), errRevisionNameTaken)
	}
	if err != nil {
		return nil, fmt.Errorf("creating controller revision %s: %w", r.Key(), err)
	}
	h.log.Info("created controller revision", zap.String("owner", m.Key()), zap.String("revision", r.Name), zap.Int64("number", r.Revision))
	return out, nil
}

// renumber makes r the newest of revs unless it is already.
func (h *revisionHistory) renumber(ctx context.Context, owner *api.ObjectMeta, r *api.ControllerRevision, revs []*api.ControllerRevision) (*api.ControllerRevision, error) {
	var newest int64
	for _, o := range revs {
		if o.Name != r.Name {
			newest = max(newest, o.Revision)
		}
	}
	if r.Revision > newest {
		return r, nil
	}
	next := api.DeepCopyOf(r)
	next.Revision = newest + 1
	out, err := client.Update(ctx, h.client, next)
	if err != nil {
		// A conflict means the cache is behind; the next sync sees the newer copy.
		return nil, fmt.Errorf("renumbering controller revision %s: %w", r.Key(), err)
	}
	h.log.Info("renumbered controller revision", zap.String("owner", owner.Key()), zap.String("revision", r.Name),
		zap.Int64("from", r.Revision), zap.Int64("to", next.Revision))
	return out, nil
}

// prune deletes the oldest of revs (lowest revision first) while more than limit of
// them are not live; live says which revisions pods (or the owner's status) still
// use, and those are never deleted.
func (h *revisionHistory) prune(ctx context.Context, owner *api.ObjectMeta, revs []*api.ControllerRevision, limit int, live func(*api.ControllerRevision) bool) error {
	var old []*api.ControllerRevision
	for _, r := range revs {
		if !live(r) {
			old = append(old, r)
		}
	}
	var errs []error
	for i := 0; i < len(old)-max(limit, 0); i++ {
		r := old[i]
		_, err := h.client.Delete(ctx, api.KindOfType[*api.ControllerRevision](), r.Namespace, r.Name)
		if err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting controller revision %s: %w", r.Key(), err))
			continue
		}
		h.log.Info("deleted old controller revision", zap.String("owner", owner.Key()), zap.String("revision", r.Name), zap.Int64("number", r.Revision))
	}
	return errors.Join(errs...)
}
