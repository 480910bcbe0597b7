package controller

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// The annotations a Deployment's controller keeps on its ReplicaSets, as Kubernetes
// does: the Deployment's replicas, and replicas plus maxSurge, when the ReplicaSet was
// last sized. A ReplicaSet whose desired-replicas differs from the Deployment's
// replicas tells of a scaling event; max-replicas is the base of its share when the
// new size is spread over several ReplicaSets.
const (
	annotationDesiredReplicas = "deployment.kubernetes.io/desired-replicas"
	annotationMaxReplicas     = "deployment.kubernetes.io/max-replicas"
)

// replicasAnnotations returns d's desired and maximum (replicas + maxSurge) replicas.
func replicasAnnotations(d *api.Deployment) (desired, maxReplicas int) {
	surge, _ := d.MaxSurgeAndUnavailable()
	desired = int(api.Int32Value(d.Spec.Replicas, 1))
	return desired, desired + surge
}

// setReplicasAnnotations records d's sizes on rs; it reports whether they changed.
func setReplicasAnnotations(rs *api.ReplicaSet, d *api.Deployment) bool {
	desired, maxReplicas := replicasAnnotations(d)
	want := map[string]string{annotationDesiredReplicas: strconv.Itoa(desired), annotationMaxReplicas: strconv.Itoa(maxReplicas)}
	changed := false
	for k, v := range want {
		if rs.Annotations[k] != v {
			if rs.Annotations == nil {
				rs.Annotations = map[string]string{}
			}
			rs.Annotations[k] = v
			changed = true
		}
	}
	return changed
}

// scaleRS sets rs's replicas to n and records d's sizes on it; it reports whether
// anything changed.
func (c *DeploymentController) scaleRS(ctx context.Context, d *api.Deployment, rs *api.ReplicaSet, n int) (bool, error) {
	next := api.DeepCopyOf(rs)
	annotated := setReplicasAnnotations(next, d)
	if appsReplicas(rs) == n && !annotated {
		return false, nil
	}
	v := int32(n)
	next.Spec.Replicas = &v
	if _, err := c.client.Update(ctx, next); err != nil {
		return false, fmt.Errorf("scaling replicaset %s to %d: %w", rs.Key(), n, err)
	}
	if appsReplicas(rs) == n {
		return true, nil
	}
	c.log.Info("scaled replicaset", zap.String("deployment", d.Key()), zap.String("replicaset", rs.Name),
		zap.Int("from", appsReplicas(rs)), zap.Int("to", n))
	dir := "up"
	if n < appsReplicas(rs) {
		dir = "down"
	}
	c.recorder.Event(d, api.EventNormal, "ScalingReplicaSet", "Scaled %s replica set %s to %d", dir, rs.Name, n)
	return true, nil
}

// isScalingEvent reports whether d's replicas changed since its active ReplicaSets
// were last sized. ReplicaSets without the annotation (made before it was kept) do
// not count.
func isScalingEvent(d *api.Deployment, rss []*api.ReplicaSet) bool {
	desired, _ := replicasAnnotations(d)
	for _, rs := range rss {
		if appsReplicas(rs) == 0 {
			continue
		}
		if v, ok := rs.Annotations[annotationDesiredReplicas]; ok && v != strconv.Itoa(desired) {
			return true
		}
	}
	return false
}

// scale applies a change of spec.replicas without moving the rollout on, as
// Kubernetes does: one active ReplicaSet takes the whole change; when a rollout has
// several, each gets a share in proportion to its size (measured against the
// max-replicas it was sized for), the rounding rest going to the largest, so that
// scaling in mid-rollout keeps the old-to-new ratio instead of growing only one side.
func (c *DeploymentController) scale(ctx context.Context, d *api.Deployment, newRS *api.ReplicaSet, old []*api.ReplicaSet) error {
	want := int(api.Int32Value(d.Spec.Replicas, 1))
	var active []*api.ReplicaSet
	for _, rs := range append(append([]*api.ReplicaSet{}, old...), newRS) {
		if rs != nil && appsReplicas(rs) > 0 {
			active = append(active, rs)
		}
	}
	if len(active) <= 1 {
		target := newRS
		if len(active) == 1 {
			target = active[0]
		} else if target == nil && len(old) > 0 {
			target = old[len(old)-1] // the latest
		}
		if target == nil {
			return nil
		}
		_, err := c.scaleRS(ctx, d, target, want)
		return err
	}
	// A new ReplicaSet already complete: the old ones only have to go.
	if newRS != nil && appsReplicas(newRS) == want && int(newRS.Status.AvailableReplicas) == want {
		for _, rs := range old {
			if _, err := c.scaleRS(ctx, d, rs, 0); err != nil {
				return err
			}
		}
		return nil
	}
	_, allowed := replicasAnnotations(d)
	total, _ := appsSumReplicas(active)
	toAdd := allowed - total
	// Growing favours the newer of equal ReplicaSets, shrinking the older.
	sort.SliceStable(active, func(i, j int) bool {
		if ri, rj := appsReplicas(active[i]), appsReplicas(active[j]); ri != rj {
			return ri > rj
		}
		newer := appsCreatedAfter(active[i], active[j])
		if toAdd > 0 {
			return newer
		}
		return appsCreatedAfter(active[j], active[i])
	})
	sizes := make([]int, len(active))
	added := 0
	for i, rs := range active {
		p := proportion(rs, d, allowed, toAdd, added)
		sizes[i] = appsReplicas(rs) + p
		added += p
	}
	sizes[0] = max(sizes[0]+toAdd-added, 0)
	// Shrink before growing, so the total never passes the allowed maximum.
	order := make([]int, len(active))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return sizes[order[a]]-appsReplicas(active[order[a]]) < sizes[order[b]]-appsReplicas(active[order[b]])
	})
	for _, i := range order {
		if _, err := c.scaleRS(ctx, d, active[i], sizes[i]); err != nil {
			return err
		}
	}
	return nil
}

// proportion is rs's share of toAdd replicas (negative to remove), bounded by what
// is left after added: its size scaled by allowed / the max-replicas it was sized
// for (the Deployment's current total if it lacks the annotation), rounded.
func proportion(rs *api.ReplicaSet, d *api.Deployment, allowed, toAdd, added int) int {
	cur := appsReplicas(rs)
	if cur == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	var share int
	if api.Int32Value(d.Spec.Replicas, 1) == 0 {
		share = -cur
	} else {
		base, err := strconv.Atoi(rs.Annotations[annotationMaxReplicas])
		if err != nil || base <= 0 {
			base = int(d.Status.Replicas)
		}
		if base <= 0 {
			return 0
		}
		share = int(math.Round(float64(cur*allowed)/float64(base))) - cur
	}
	left := toAdd - added
	if toAdd > 0 {
		return max(min(share, left), 0)
	}
	return min(max(share, left), 0)
}

// appsCreatedAfter reports whether a was created after b (by name on equal times).
func appsCreatedAfter(a, b *api.ReplicaSet) bool {
	ca, cb := a.CreationTimestamp, b.CreationTimestamp
	if ca != nil && cb != nil && !ca.Equal(cb.Time) {
		return ca.After(cb.Time)
	}
	return a.Name > b.Name
}
