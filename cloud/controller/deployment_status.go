package controller

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// syncStatus writes d's revision annotation and status from its ReplicaSets, and sets
// the Available and Progressing conditions. When a rollout is under way it queues d
// again for its progress deadline, which no watch would report.
func (c *DeploymentController) syncStatus(ctx context.Context, d *api.Deployment, appsNewRS *api.ReplicaSet, old []*api.ReplicaSet, _ bool) error {
	if appsNewRS != nil {
		rev := strconv.FormatInt(Revision(appsNewRS), 10)
		if Revision(appsNewRS) > 0 && d.Annotations[api.AnnotationRevision] != rev {
			next := api.DeepCopyOf(d)
			if next.Annotations == nil {
				next.Annotations = map[string]string{}
			}
			next.Annotations[api.AnnotationRevision] = rev
			out, err := client.Update(ctx, c.client, next)
			if err != nil {
				return fmt.Errorf("recording revision of deployment %s: %w", d.Key(), err)
			}
			d = out
		}
	}
	now := c.clock.Now()
	want := api.Int32Value(d.Spec.Replicas, 1)
	st := api.DeploymentStatus{ObservedGeneration: d.Generation, CollisionCount: d.Status.CollisionCount,
		Conditions: append([]api.DeploymentCondition(nil), d.Status.Conditions...)}
	for _, rs := range append([]*api.ReplicaSet{appsNewRS}, old...) {
		if rs == nil {
			continue
		}
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if appsNewRS != nil {
		st.UpdatedReplicas = appsNewRS.Status.Replicas
	}
	st.UnavailableReplicas = max(want-st.AvailableReplicas, 0)

	_, maxUnavailable := d.MaxSurgeAndUnavailable()
	if st.AvailableReplicas >= want-int32(maxUnavailable) {
		setDeploymentCondition(&st, api.DeploymentAvailable, api.ConditionTrue, api.ReasonMinimumReplicasAvailable, "Deployment has minimum availability.", now)
	} else {
		setDeploymentCondition(&st, api.DeploymentAvailable, api.ConditionFalse, api.ReasonMinimumReplicasUnavailable, "Deployment does not have minimum availability.", now)
	}

	setReplicaFailure(&st, appsNewRS, old, now)

	rsName := ""
	if appsNewRS != nil {
		rsName = appsNewRS.Name
	}
	prog := st.Condition(api.DeploymentProgressing)
	deadline := time.Duration(api.Int32Value(d.Spec.ProgressDeadlineSeconds, api.DefaultProgressDeadlineSeconds)) * time.Second
	switch {
	case d.Spec.Paused:
		if prog == nil || prog.Reason != api.ReasonDeploymentPaused {
			setDeploymentCondition(&st, api.DeploymentProgressing, api.ConditionUnknown, api.ReasonDeploymentPaused, "Deployment is paused", now)
		}
	case deploymentComplete(d, appsNewRS, old):
		if prog == nil || prog.Reason != api.ReasonNewReplicaSetAvailable {
			setDeploymentCondition(&st, api.DeploymentProgressing, api.ConditionTrue, api.ReasonNewReplicaSetAvailable,
				fmt.Sprintf("ReplicaSet %q has successfully appsProgressed.", rsName), now)
		}
	case prog == nil || prog.Reason == api.ReasonDeploymentPaused || d.Status.ObservedGeneration < d.Generation || appsProgressed(d.Status, st):
		setDeploymentCondition(&st, api.DeploymentProgressing, api.ConditionTrue, api.ReasonReplicaSetUpdated,
			fmt.Sprintf("ReplicaSet %q is progressing.", rsName), now)
		c.queue.AddAfter(d.Key(), deadline+time.Second)
	case prog.Status == api.ConditionTrue && prog.LastUpdateTime != nil:
		if left := prog.LastUpdateTime.Add(deadline).Sub(now); left < 0 {
			setDeploymentCondition(&st, api.DeploymentProgressing, api.ConditionFalse, api.ReasonProgressDeadlineExceeded,
				fmt.Sprintf("ReplicaSet %q has timed out progressing.", rsName), now)
			c.log.Info("rollout exceeded its progress deadline", zap.String("deployment", d.Key()))
		} else {
			c.queue.AddAfter(d.Key(), left+time.Second)
		}
	}
	if appsStatusEqual(d.Status, st) {
		return nil
	}
	next := api.DeepCopyOf(d)
	next.Status = st
	_, err := c.client.UpdateStatus(ctx, next)
	if client.IsNotFound(err) {
		return nil
	}
	return err
}

// appsProgressed reports whether the rollout moved between two statuses.
func appsProgressed(was, now api.DeploymentStatus) bool {
	return now.UpdatedReplicas > was.UpdatedReplicas || now.AvailableReplicas > was.AvailableReplicas ||
		now.ReadyReplicas > was.ReadyReplicas || now.Replicas-now.UpdatedReplicas < was.Replicas-was.UpdatedReplicas
}

// setDeploymentCondition sets a condition, leaving an identical one (and its times)
// alone.
func setDeploymentCondition(st *api.DeploymentStatus, typ, status, reason, msg string, now time.Time) {
	if c := st.Condition(typ); c != nil && c.Status == status && c.Reason == reason && c.Message == msg && typ != api.DeploymentProgressing {
		return
	}
	st.SetCondition(api.DeploymentCondition{Type: typ, Status: status, Reason: reason, Message: msg, LastUpdateTime: api.NewTime(now)})
}

func appsStatusEqual(a, b api.DeploymentStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.Replicas != b.Replicas || a.UpdatedReplicas != b.UpdatedReplicas ||
		a.ReadyReplicas != b.ReadyReplicas || a.AvailableReplicas != b.AvailableReplicas || a.UnavailableReplicas != b.UnavailableReplicas ||
		len(a.Conditions) != len(b.Conditions) || api.Int32Value(a.CollisionCount, 0) != api.Int32Value(b.CollisionCount, 0) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message ||
			(x.LastUpdateTime == nil) != (y.LastUpdateTime == nil) || (x.LastUpdateTime != nil && !x.LastUpdateTime.Equal(y.LastUpdateTime.Time)) {
			return false
		}
	}
	return true
}

// setReplicaFailure surfaces a ReplicaFailure of d's ReplicaSets (the new one's
// first) as the Deployment's own condition, and clears it once none has one.
func setReplicaFailure(st *api.DeploymentStatus, appsNewRS *api.ReplicaSet, old []*api.ReplicaSet, now time.Time) {
	for _, rs := range append([]*api.ReplicaSet{appsNewRS}, old...) {
		if rs == nil {
			continue
		}
		if f := rsCondition(rs.Status, api.DeploymentReplicaFailure); f != nil {
			setDeploymentCondition(st, api.DeploymentReplicaFailure, f.Status, f.Reason, f.Message, now)
			return
		}
	}
	conds := st.Conditions[:0:0]
	for _, c := range st.Conditions {
		if c.Type != api.DeploymentReplicaFailure {
			conds = append(conds, c)
		}
	}
	st.Conditions = conds
}
