package controller

import (
	"fmt"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// rsSizes maps each ReplicaSet's image to its spec.replicas.
func rsSizes(objs []api.Object) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		rs := o.(*api.ReplicaSet)
		m[rs.Spec.Template.Spec.Containers[0].Image] += appsReplicas(rs)
	}
	return m
}

// TestDeploymentProportionalScaling: scaling a Deployment in the middle of a rollout
// spreads the change over its ReplicaSets in proportion to their sizes (Kubernetes's
// example: 10 old + 3 new, scaled to 20 with maxSurge 3, become 18 + 5), both ways,
// and the rollout then finishes at the new size.
func TestDeploymentProportionalScaling(t *testing.T) {
	e := newAppsEnv(t)
	d := appsNewDeploy("prop", 10, "nginx:1")
	d.Spec.Strategy.RollingUpdate = &api.RollingUpdateDeployment{MaxSurge: appsPtr(api.FromInt(3)), MaxUnavailable: appsPtr(api.FromInt(0))}
	e.create(d)
	e.waitRolledOut("prop", 10, "nginx:1")

	// The new pods never get ready: the rollout stops at 10 old + 3 new.
	e.kubelet.setHold(func(p *api.Pod) bool { return p.Spec.Containers[0].Image == "nginx:2" })
	e.update("deployments", "prop", appsSetImage("nginx:2"))
	waitSizes := func(want map[string]int) {
		t.Helper()
		e.waitFor("replicasets", fmt.Sprintf("replicasets sized %v", want), func(objs []api.Object) bool {
			got := rsSizes(objs)
			if got["nginx:2"] > want["nginx:2"] {
				t.Fatalf("the new replicaset grew past its share: %v, want %v", got, want)
			}
			return got["nginx:1"] == want["nginx:1"] && got["nginx:2"] == want["nginx:2"]
		})
	}
	waitSizes(map[string]int{"nginx:1": 10, "nginx:2": 3})

	e.update("deployments", "prop", func(o api.Object) { o.(*api.Deployment).Spec.Replicas = appsI32(20) })
	waitSizes(map[string]int{"nginx:1": 18, "nginx:2": 5})
	e.waitFor("replicasets", "sizes recorded", func(objs []api.Object) bool {
		for _, o := range objs {
			a := o.GetObjectMeta().Annotations
			if a[annotationDesiredReplicas] != "20" || a[annotationMaxReplicas] != "23" {
				return false
			}
		}
		return true
	})

	// Down: 8 allowed (5 + 3) out of 23: 18 -> 6 and 5 -> 2.
	e.update("deployments", "prop", func(o api.Object) { o.(*api.Deployment).Spec.Replicas = appsI32(5) })
	e.waitFor("replicasets", "scaled down in proportion", func(objs []api.Object) bool {
		got := rsSizes(objs)
		return got["nginx:1"] == 6 && got["nginx:2"] == 2
	})

	e.kubelet.setHold(nil)
	e.kubelet.release(e.ctx)
	e.waitRolledOut("prop", 5, "nginx:2")
}
