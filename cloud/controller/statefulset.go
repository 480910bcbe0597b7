package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	Register("statefulset", func(d Deps) Runner { return NewStatefulSetController(d) })
}

// StatefulSetController runs StatefulSets: pods NAME-0 .. NAME-N-1 with stable
// hostnames (spec.hostname is the pod's name, spec.subdomain the serviceName), made
// in order and each Ready before the next (OrderedReady) or all at once (Parallel),
// removed highest ordinal first, one at a time; a claim per replica and claim
// template, named TEMPLATE-STS-ORDINAL, which outlives the pod and scale-down; and a
// rolling update that replaces pods from the highest ordinal down to the partition.
// Each template the set has had is kept as a ControllerRevision (history.go), pruned
// to revisionHistoryLimit; the pods carry its name, and status.currentRevision and
// updateRevision name revisions.
//
// A pod whose claim is bound is pinned to the claim's node with a nodeSelector on
// kubernetes.io/hostname, since a local volume cannot follow it elsewhere.
type StatefulSetController struct {
	base
	sets    client.Typed[*api.StatefulSet]
	pods    client.Typed[*api.Pod]
	claims  client.Typed[*api.PersistentVolumeClaim]
	history *revisionHistory
}

// NewStatefulSetController returns a controller reading StatefulSets, their pods,
// claims and revisions from d's factory.
func NewStatefulSetController(d Deps) *StatefulSetController {
	c := &StatefulSetController{base: newBase(d, "statefulset-controller", 1), sets: client.For[*api.StatefulSet](d.Factory),
		pods: client.For[*api.Pod](d.Factory), claims: client.For[*api.PersistentVolumeClaim](d.Factory)}
	c.history = newRevisionHistory(&c.base, "StatefulSet")
	c.sets.AddHandler(onChange(func(set *api.StatefulSet) { c.enqueue(set) }))
	c.pods.AddHandler(onChange(func(p *api.Pod) { c.enqueueController("StatefulSet", p) }))
	return c
}

// Run works until ctx is cancelled.
func (c *StatefulSetController) Run(ctx context.Context) { c.runQueue(ctx, c.sync) }

// templateHash names a pod template's revision before any hash collision.
func templateHash(t *api.PodTemplateSpec) string { return revisionHash(t, nil) }

// ordinalOf parses NAME-N for the set named set; -1 when the name is not of that form.
func ordinalOf(set, pod string) int {
	s, ok := strings.CutPrefix(pod, set+"-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return -1
	}
	return n
}

// ClaimName is the claim a StatefulSet's replica gets from a claim template.
func ClaimName(template, set string, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", template, set, ordinal)
}

func (c *StatefulSetController) sync(ctx context.Context, key string) error {
	set, ok := c.sets.Get(key)
	if !ok {
		return nil // deleted: the garbage collector removes its pods
	}
	if set.DeletionTimestamp != nil {
		return nil
	}
	// Pods carry their revision's name (SET-HASH), as in Kubernetes.
	revs := c.history.owned(set)
	cur, err := c.history.current(ctx, set, &set.Spec.Template, set.Status.CollisionCount, revs)
	if errors.Is(err, errRevisionNameTaken) {
		return countCollision(ctx, c.client, set, func(o *api.StatefulSet) **int32 { return &o.Status.CollisionCount }, err)
	}
	if err != nil {
		return err
	}
	revision := cur.Name
	replicas := int(api.Int32Value(set.Spec.Replicas, 1))
	ordered := set.Spec.PodManagementPolicy != api.ParallelPodManagement
	byOrdinal := map[int]*api.Pod{}
	var condemned []*api.Pod // ordinals beyond replicas, highest first
	live := map[string]bool{revision: true, set.Status.CurrentRevision: true}
	for _, p := range c.pods.ControlledBy(set.UID) {
		live[p.Labels[api.LabelControllerRevisionHash]] = true
		n := ordinalOf(set.Name, p.Name)
		if n < 0 {
			continue
		}
		byOrdinal[n] = p
		if n >= replicas {
			condemned = append(condemned, p)
		}
	}
	err = c.reconcile(ctx, set, revision, replicas, ordered, byOrdinal, condemned)
	if serr := c.updateStatus(ctx, set, revision, replicas, byOrdinal); err == nil {
		err = serr
	}
	limit := int(api.Int32Value(set.Spec.RevisionHistoryLimit, api.DefaultRevisionHistoryLimit))
	if perr := c.history.prune(ctx, &set.ObjectMeta, revs, limit, func(r *api.ControllerRevision) bool { return live[r.Name] }); err == nil {
		err = perr
	}
	return err
}

func (c *StatefulSetController) reconcile(ctx context.Context, set *api.StatefulSet, revision string, replicas int, ordered bool, byOrdinal map[int]*api.Pod, condemned []*api.Pod) error {
	healthy := true // every pod below replicas exists, runs and is Ready
	for n := 0; n < replicas; n++ {
		p := byOrdinal[n]
		switch {
		case p == nil:
			if err := c.createPod(ctx, set, revision, n); err != nil {
				return err
			}
			healthy = false
		case p.DeletionTimestamp != nil:
			healthy = false // wait for it to go before making it again
		case p.Status.Phase == api.PodFailed || p.Status.Phase == api.PodSucceeded:
			// A stopped pod is replaced under the same name.
			if err := c.deletePod(ctx, set, p); err != nil {
				return err
			}
			healthy = false
		case !podServing(p):
			healthy = false
		}
		if ordered && !healthy {
			return nil
		}
	}
	// Scale down: the highest ordinal first, one at a time, and (OrderedReady) only
	// while the rest are healthy.
	maxOrd, victim := -1, (*api.Pod)(nil)
	for _, p := range condemned {
		if p.DeletionTimestamp != nil {
			if ordered {
				return nil
			}
			continue
		}
		if n := ordinalOf(set.Name, p.Name); n > maxOrd {
			maxOrd, victim = n, p
		}
	}
	if victim != nil && (healthy || !ordered) {
		c.log.Info("scaling down", zap.String("statefulset", set.Key()), zap.String("pod", victim.Name))
		return c.deletePod(ctx, set, victim)
	}
	if !healthy || len(condemned) > 0 || set.Spec.UpdateStrategy.Type != api.RollingUpdateStatefulSetStrategyType {
		return nil
	}
	// Rolling update: replace the highest ordinal at or above the partition that
	// still has an old revision; the loop above makes it again from the new template.
	partition := 0
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		partition = int(*ru.Partition)
	}
	for n := replicas - 1; n >= partition; n-- {
		p := byOrdinal[n]
		if p != nil && p.Labels[api.LabelControllerRevisionHash] != revision {
			c.log.Info("replacing a pod with the new revision", zap.String("statefulset", set.Key()), zap.String("pod", p.Name))
			return c.deletePod(ctx, set, p)
		}
	}
	return nil
}

// createPod makes the replica's claims (if missing) and then its pod.
func (c *StatefulSetController) createPod(ctx context.Context, set *api.StatefulSet, revision string, n int) error {
	name := fmt.Sprintf("%s-%d", set.Name, n)
	pod := &api.Pod{}
	pod.APIVersion, pod.Kind = "v1", "Pod"
	pod.Namespace, pod.Name = set.Namespace, name
	pod.Labels = map[string]string{}
	for k, v := range set.Spec.Template.Metadata.Labels {
		pod.Labels[k] = v
	}
	pod.Labels[api.LabelControllerRevisionHash] = revision
	pod.Labels[api.LabelStatefulSetPodName] = name
	if len(set.Spec.Template.Metadata.Annotations) > 0 {
		pod.Annotations = map[string]string{}
		for k, v := range set.Spec.Template.Metadata.Annotations {
			pod.Annotations[k] = v
		}
	}
	pod.OwnerReferences = []api.OwnerReference{OwnerRef(set)}
	pod.Spec = api.DeepCopyOf(&api.Pod{Spec: set.Spec.Template.Spec}).Spec
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.Spec.ServiceName
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		claim, err := c.ensureClaim(ctx, set, t, n)
		if err != nil {
			return err
		}
		vol := api.Volume{Name: t.Name, PersistentVolumeClaim: &api.PersistentVolumeSource{ClaimName: claim.Name}}
		replaced := false
		for j := range pod.Spec.Volumes {
			if pod.Spec.Volumes[j].Name == t.Name {
				pod.Spec.Volumes[j], replaced = vol, true
			}
		}
		if !replaced {
			pod.Spec.Volumes = append(pod.Spec.Volumes, vol)
		}
		if node := claim.BoundNode(); node != "" {
			if pod.Spec.NodeSelector == nil {
				pod.Spec.NodeSelector = map[string]string{}
			}
			pod.Spec.NodeSelector[api.LabelHostname] = node
		}
	}
	c.log.Info("creating pod", zap.String("statefulset", set.Key()), zap.String("pod", name))
	_, err := c.client.Create(ctx, pod)
	if client.IsAlreadyExists(err) {
		return nil // the cache has not seen it yet
	}
	if err != nil {
		c.recorder.Event(set, api.EventWarning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", name, set.Name, err)
		return err
	}
	c.recorder.Event(set, api.EventNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", name, set.Name)
	return nil
}

// deletePod deletes one of set's pods; one already gone is no error.
func (c *StatefulSetController) deletePod(ctx context.Context, set *api.StatefulSet, p *api.Pod) error {
	_, err := c.client.Delete(ctx, api.KindOfType[*api.Pod](), p.Namespace, p.Name)
	switch {
	case client.IsNotFound(err):
		return nil
	case err != nil:
		c.recorder.Event(set, api.EventWarning, "FailedDelete", "delete Pod %s in StatefulSet %s failed error: %v", p.Name, set.Name, err)
		return err
	}
	c.recorder.Event(set, api.EventNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", p.Name, set.Name)
	return nil
}

// ensureClaim returns replica n's claim from template t, creating it when missing.
// Claims carry no owner reference: they outlive their pods and the set.
func (c *StatefulSetController) ensureClaim(ctx context.Context, set *api.StatefulSet, t *api.PersistentVolumeClaim, n int) (*api.PersistentVolumeClaim, error) {
	name := ClaimName(t.Name, set.Name, n)
	if claim, ok := c.claims.GetByName(set.Namespace, name); ok {
		return claim, nil
	}
	if claim, err := client.Get[*api.PersistentVolumeClaim](ctx, c.client, set.Namespace, name); err == nil {
		return claim, nil
	} else if !client.IsNotFound(err) {
		return nil, err
	}
	claim := &api.PersistentVolumeClaim{}
	claim.APIVersion, claim.Kind = "v1", "PersistentVolumeClaim"
	claim.Namespace, claim.Name = set.Namespace, name
	claim.Labels = map[string]string{}
	for k, v := range t.Labels {
		claim.Labels[k] = v
	}
	if set.Spec.Selector != nil {
		for k, v := range set.Spec.Selector.MatchLabels {
			claim.Labels[k] = v
		}
	}
	claim.Annotations = t.Annotations
	claim.Spec = t.Spec
	c.log.Info("creating claim", zap.String("statefulset", set.Key()), zap.String("claim", name))
	out, err := client.Create(ctx, c.client, claim)
	if client.IsAlreadyExists(err) {
		out, err = client.Get[*api.PersistentVolumeClaim](ctx, c.client, set.Namespace, name)
	}
	return out, err
}

func (c *StatefulSetController) updateStatus(ctx context.Context, set *api.StatefulSet, revision string, replicas int, byOrdinal map[int]*api.Pod) error {
	st := api.StatefulSetStatus{ObservedGeneration: set.Generation, UpdateRevision: revision, CollisionCount: set.Status.CollisionCount}
	current := set.Status.CurrentRevision
	if current == "" {
		current = revision
	}
	for _, p := range byOrdinal {
		if p.DeletionTimestamp != nil {
			continue
		}
		st.Replicas++
		if podServing(p) {
			st.ReadyReplicas++
			st.AvailableReplicas++
		}
		switch p.Labels[api.LabelControllerRevisionHash] {
		case revision:
			st.UpdatedReplicas++
		}
		if p.Labels[api.LabelControllerRevisionHash] == current {
			st.CurrentReplicas++
		}
	}
	if int(st.UpdatedReplicas) == replicas && int(st.ReadyReplicas) >= replicas {
		current = revision
		st.CurrentReplicas = st.UpdatedReplicas
	}
	st.CurrentRevision = current
	if reflect.DeepEqual(st, set.Status) {
		return nil
	}
	next := api.DeepCopyOf(set)
	next.Status = st
	_, err := c.client.UpdateStatus(ctx, next)
	if client.IsConflict(err) || client.IsNotFound(err) {
		return nil // a newer version is queued
	}
	return err
}
