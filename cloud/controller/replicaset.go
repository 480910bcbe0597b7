package controller

import (
	"context"
	"reflect"
	"sort"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	Register("replicaset", func(d Deps) Runner { return NewReplicaSetController(d) })
}

// ReplicaSetController keeps each ReplicaSet's number of pods: it creates and deletes
// pods, adopts orphans its selector matches, releases pods whose labels stop matching,
// and reports status.
type ReplicaSetController struct {
	base
	replicaSets client.Typed[*api.ReplicaSet]
	pods        client.Typed[*api.Pod]
	exp         *expectations
	podControl  podControl
}

// NewReplicaSetController returns a controller reading ReplicaSets and pods from
// d's factory.
func NewReplicaSetController(d Deps) *ReplicaSetController {
	c := &ReplicaSetController{base: newBase(d, "replicaset-controller", 4),
		replicaSets: client.For[*api.ReplicaSet](d.Factory), pods: client.For[*api.Pod](d.Factory)}
	c.exp = newExpectations(c.clock)
	c.podControl = podControl{client: c.client, recorder: c.recorder, exp: c.exp, log: c.log}
	c.replicaSets.AddHandler(client.TypedHandler[*api.ReplicaSet]{
		OnAdd:    func(rs *api.ReplicaSet) { c.enqueue(rs) },
		OnUpdate: func(_, rs *api.ReplicaSet) { c.enqueue(rs) },
		OnDelete: func(rs *api.ReplicaSet) {
			c.exp.forget(rs.Key())
			c.enqueue(rs)
		},
	})
	c.pods.AddHandler(client.TypedHandler[*api.Pod]{
		OnAdd: func(p *api.Pod) {
			c.exp.observe(p.Key(), false)
			if p.DeletionTimestamp != nil {
				c.exp.observe(p.Key(), true)
			}
			c.enqueueForPod(p)
		},
		OnUpdate: func(op, p *api.Pod) {
			if p.DeletionTimestamp != nil {
				c.exp.observe(p.Key(), true)
			}
			c.enqueueForPod(p)
			if !appsSameOwner(op.ControllerRef(), p.ControllerRef()) || !appsEqualLabels(op.Labels, p.Labels) {
				c.enqueueForPod(op)
			}
		},
		OnDelete: func(p *api.Pod) {
			c.exp.observe(p.Key(), true)
			c.enqueueForPod(p)
		},
	})
	return c
}

// Run reconciles until ctx is cancelled.
func (c *ReplicaSetController) Run(ctx context.Context) { c.runQueue(ctx, c.sync) }

// enqueueForPod queues the ReplicaSet that controls p, or, for an orphan, every
// ReplicaSet of its namespace whose selector matches it (one may adopt it).
func (c *ReplicaSetController) enqueueForPod(p *api.Pod) {
	enqueueOwnerOrAdopters(&c.base, "ReplicaSet", p, c.replicaSets, func(rs *api.ReplicaSet) *api.LabelSelector { return rs.Spec.Selector })
}

func appsSameOwner(a, b *api.OwnerReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID
}

func appsEqualLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// appsBurstReplicas bounds the pods one sync creates or deletes, so that a huge scale
// request makes steady progress rather than one enormous batch.
const appsBurstReplicas = 500

func (c *ReplicaSetController) sync(ctx context.Context, key string) error {
	rs, ok := c.replicaSets.Get(key)
	if !ok {
		c.exp.forget(key)
		return nil
	}
	if rs.DeletionTimestamp != nil {
		return nil // the garbage collector removes it and its pods
	}
	sel, err := rs.Spec.Selector.AsSelector()
	if err != nil {
		return nil // validation keeps this from happening; nothing to retry
	}
	pods, err := c.claimPods(ctx, rs, sel)
	if err != nil {
		return err
	}
	var manageErr error
	managed := c.exp.satisfied(key)
	if managed {
		manageErr = c.manage(ctx, rs, pods)
	}
	// Pods whose deletion is pending are not counted: the status must not report
	// more than will remain, or a Deployment would scale down too far on it.
	active := pods[:0:0]
	for _, p := range pods {
		if !c.exp.deleting(p.Key()) {
			active = append(active, p)
		}
	}
	failure := rsCondition(rs.Status, api.DeploymentReplicaFailure)
	if managed {
		failure = replicaFailure(rs, len(pods), manageErr, c.clock.Now())
	}
	if err := c.updateStatus(ctx, rs, active, failure); err != nil {
		return err
	}
	return manageErr
}

// claimPods returns the active pods rs owns after adopting orphans its selector
// matches and releasing owned pods it no longer matches.
func (c *ReplicaSetController) claimPods(ctx context.Context, rs *api.ReplicaSet, sel api.Selector) ([]*api.Pod, error) {
	live := func(p *api.Pod) bool { return p.DeletionTimestamp == nil && !p.IsTerminal() }
	pods, err := claim(ctx, c.client, c.log, rs, sel, c.pods.InNamespace(rs.Namespace), live)
	active := pods[:0]
	for _, p := range pods {
		if live(p) {
			active = append(active, p)
		}
	}
	return active, err
}

// manage creates or deletes pods until rs has spec.replicas active ones.
func (c *ReplicaSetController) manage(ctx context.Context, rs *api.ReplicaSet, pods []*api.Pod) error {
	want := int(api.Int32Value(rs.Spec.Replicas, 1))
	diff := len(pods) - want
	switch {
	case diff < 0:
		newPods := make([]*api.Pod, min(-diff, appsBurstReplicas))
		for i := range newPods {
			newPods[i] = podFromTemplate(rs, &rs.Spec.Template)
		}
		return c.podControl.create(ctx, rs, newPods, "")
	case diff > 0:
		victims := append([]*api.Pod(nil), pods...)
		now := c.clock.Now()
		sort.SliceStable(victims, func(i, j int) bool { return deleteFirst(victims[i], victims[j], now) })
		return c.podControl.delete(ctx, rs, victims[:min(diff, appsBurstReplicas)], "")
	}
	return nil
}

// replicaFailure is the ReplicaFailure condition rs should carry after a pass of
// manage over n pods that returned err: nil once pods are created and deleted again,
// FailedCreate or FailedDelete with the error otherwise (kept from rs if already
// set, so a repeated failure writes nothing), as Kubernetes reports it.
func replicaFailure(rs *api.ReplicaSet, n int, err error, now time.Time) *api.ReplicaSetCondition {
	if err == nil {
		return nil
	}
	if cur := rsCondition(rs.Status, api.DeploymentReplicaFailure); cur != nil {
		return cur
	}
	reason := "FailedCreate"
	if n > int(api.Int32Value(rs.Spec.Replicas, 1)) {
		reason = "FailedDelete"
	}
	return &api.ReplicaSetCondition{Type: api.DeploymentReplicaFailure, Status: api.ConditionTrue, Reason: reason,
		Message: err.Error(), LastTransitionTime: api.NewTime(now)}
}

// rsCondition returns the condition of type typ in st, nil if there is none.
func rsCondition(st api.ReplicaSetStatus, typ string) *api.ReplicaSetCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == typ {
			return &st.Conditions[i]
		}
	}
	return nil
}

// updateStatus writes rs's counts from pods, with failure as its only ReplicaFailure
// condition (none when nil).
func (c *ReplicaSetController) updateStatus(ctx context.Context, rs *api.ReplicaSet, pods []*api.Pod, failure *api.ReplicaSetCondition) error {
	now := c.clock.Now()
	minReady := time.Duration(rs.Spec.MinReadySeconds) * time.Second
	var tmplSel api.Selector = api.SelectorFromMap(rs.Spec.Template.Metadata.Labels)
	st := api.ReplicaSetStatus{Replicas: int32(len(pods)), ObservedGeneration: rs.Generation}
	for _, cond := range rs.Status.Conditions {
		if cond.Type != api.DeploymentReplicaFailure {
			st.Conditions = append(st.Conditions, cond)
		}
	}
	if failure != nil {
		st.Conditions = append(st.Conditions, *failure)
	}
	var recheck time.Duration
	for _, p := range pods {
		if tmplSel.Matches(p.Labels) {
			st.FullyLabeledReplicas++
		}
		if podReady(p) {
			st.ReadyReplicas++
		}
		if ok, wait := podAvailable(p, minReady, now); ok {
			st.AvailableReplicas++
		} else if wait > 0 && (recheck == 0 || wait < recheck) {
			recheck = wait
		}
	}
	if recheck > 0 {
		// A pod becomes available by the passing of time, which no watch reports.
		c.queue.AddAfter(rs.Key(), recheck+10*time.Millisecond)
	}
	if equalRSStatus(st, rs.Status) {
		return nil
	}
	next := api.DeepCopyOf(rs)
	next.Status = st
	_, err := c.client.UpdateStatus(ctx, next)
	if client.IsNotFound(err) {
		return nil
	}
	return err
}

func equalRSStatus(a, b api.ReplicaSetStatus) bool {
	return a.Replicas == b.Replicas && a.FullyLabeledReplicas == b.FullyLabeledReplicas && a.ReadyReplicas == b.ReadyReplicas &&
		a.AvailableReplicas == b.AvailableReplicas && a.ObservedGeneration == b.ObservedGeneration &&
		reflect.DeepEqual(a.Conditions, b.Conditions)
}
