package controller

import (
	"fmt"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func appsNewDeploy(name string, n int32, image string) *api.Deployment {
	d := &api.Deployment{TypeMeta: api.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}}
	d.Name, d.Namespace = name, "default"
	d.Spec.Replicas = appsI32(n)
	d.Spec.Selector = &api.LabelSelector{MatchLabels: map[string]string{"app": name}}
	d.Spec.Template = appsTemplate(name, image)
	return d
}

func appsImages(pods []*api.Pod) map[string]int {
	m := map[string]int{}
	for _, p := range pods {
		m[p.Spec.Containers[0].Image]++
	}
	return m
}

// waitRolledOut waits for n ready pods all running image, and a complete status.
func (e *appsEnv) waitRolledOut(name string, n int, image string) *api.Deployment {
	e.t.Helper()
	e.waitFor("pods", fmt.Sprintf("%d ready pods of %s", n, image), func(objs []api.Object) bool {
		ps := appsActivePods(objs)
		return len(ps) == n && appsReadyCount(ps) == n && appsImages(ps)[image] == n
	})
	var d *api.Deployment
	e.waitFor("deployments", "complete status", func(objs []api.Object) bool {
		for _, o := range objs {
			if o.GetObjectMeta().Name == name {
				d = o.(*api.Deployment)
				c := d.Status.Condition(api.DeploymentProgressing)
				return d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == int32(n) &&
					d.Status.AvailableReplicas == int32(n) && d.Status.Replicas == int32(n) &&
					c != nil && c.Reason == api.ReasonNewReplicaSetAvailable
			}
		}
		return false
	})
	return d
}

func appsSetImage(image string) func(api.Object) {
	return func(o api.Object) { o.(*api.Deployment).Spec.Template.Spec.Containers[0].Image = image }
}

func TestDeploymentRollingUpdateKeepsAvailability(t *testing.T) {
	e := newAppsEnv(t)
	d := appsNewDeploy("web", 3, "nginx:1")
	d.Spec.Strategy.RollingUpdate = &api.RollingUpdateDeployment{MaxSurge: appsPtr(api.FromInt(1)), MaxUnavailable: appsPtr(api.FromInt(0))}
	e.create(d)
	got := e.waitRolledOut("web", 3, "nginx:1")
	if got.Annotations[api.AnnotationRevision] != "1" {
		t.Fatalf("revision %q", got.Annotations[api.AnnotationRevision])
	}
	rss := e.waitFor("replicasets", "one rs", func(objs []api.Object) bool { return len(objs) == 1 })
	rs := rss[0].(*api.ReplicaSet)
	hash := rs.Labels[api.LabelPodTemplateHash]
	if hash == "" || rs.Name != "web-"+hash || rs.Spec.Selector.MatchLabels[api.LabelPodTemplateHash] != hash {
		t.Fatalf("replicaset %s labels %v selector %v", rs.Name, rs.Labels, rs.Spec.Selector)
	}

	e.update("deployments", "web", appsSetImage("nginx:2"))
	steps := 0
	e.waitFor("pods", "rollout to nginx:2", func(objs []api.Object) bool {
		ps := appsActivePods(objs)
		steps++
		if r := appsReadyCount(ps); r < 3 {
			t.Fatalf("step %d: only %d ready pods (%v)", steps, r, appsImages(ps))
		}
		if len(ps) > 4 {
			t.Fatalf("step %d: %d pods, more than replicas+maxSurge", steps, len(ps))
		}
		return len(ps) == 3 && appsReadyCount(ps) == 3 && appsImages(ps)["nginx:2"] == 3
	})
	got = e.waitRolledOut("web", 3, "nginx:2")
	if got.Annotations[api.AnnotationRevision] != "2" {
		t.Fatalf("revision %q", got.Annotations[api.AnnotationRevision])
	}
	if steps < 4 {
		t.Fatalf("only %d steps observed", steps)
	}

	// Rollback: the old template comes back as revision 3 on the old ReplicaSet.
	e.update("deployments", "web", func(o api.Object) {
		o.(*api.Deployment).Spec.Template = api.PodTemplateSpec{Metadata: rs.Spec.Template.Metadata, Spec: rs.Spec.Template.Spec}
		delete(o.(*api.Deployment).Spec.Template.Metadata.Labels, api.LabelPodTemplateHash)
	})
	got = e.waitRolledOut("web", 3, "nginx:1")
	if got.Annotations[api.AnnotationRevision] != "3" {
		t.Fatalf("revision after rollback %q", got.Annotations[api.AnnotationRevision])
	}
	back := e.waitFor("replicasets", "old rs at revision 3", func(objs []api.Object) bool {
		for _, o := range objs {
			if o.GetObjectMeta().Name == rs.Name {
				return o.GetObjectMeta().Annotations[api.AnnotationRevision] == "3"
			}
		}
		return false
	})
	if len(back) != 2 {
		t.Fatalf("%d replicasets after rollback", len(back))
	}
}

func appsPtr[T any](v T) *T { return &v }

func TestDeploymentMaxUnavailablePercent(t *testing.T) {
	e := newAppsEnv(t)
	d := appsNewDeploy("pct", 4, "nginx:1")
	d.Spec.Strategy.RollingUpdate = &api.RollingUpdateDeployment{MaxSurge: appsPtr(api.FromString("0%")), MaxUnavailable: appsPtr(api.FromString("50%"))}
	e.create(d)
	e.waitRolledOut("pct", 4, "nginx:1")
	e.update("deployments", "pct", appsSetImage("nginx:2"))
	e.waitFor("pods", "rollout", func(objs []api.Object) bool {
		ps := appsActivePods(objs)
		if len(ps) > 4 {
			t.Fatalf("%d pods with maxSurge 0%%", len(ps))
		}
		if r := appsReadyCount(ps); r < 2 {
			t.Fatalf("%d ready, below 4 - 50%%", r)
		}
		return len(ps) == 4 && appsReadyCount(ps) == 4 && appsImages(ps)["nginx:2"] == 4
	})
	e.waitRolledOut("pct", 4, "nginx:2")
}

func TestDeploymentRecreate(t *testing.T) {
	e := newAppsEnv(t)
	d := appsNewDeploy("rec", 2, "nginx:1")
	d.Spec.Strategy = api.DeploymentStrategy{Type: api.RecreateStrategy}
	e.create(d)
	e.waitRolledOut("rec", 2, "nginx:1")
	e.update("deployments", "rec", appsSetImage("nginx:2"))
	e.waitFor("pods", "recreate", func(objs []api.Object) bool {
		ps := appsActivePods(objs)
		im := appsImages(ps)
		if im["nginx:1"] > 0 && im["nginx:2"] > 0 {
			t.Fatalf("old and new pods at once: %v", im)
		}
		return im["nginx:2"] == 2 && appsReadyCount(ps) == 2
	})
	e.waitRolledOut("rec", 2, "nginx:2")
}

func TestDeploymentPausedAndScale(t *testing.T) {
	e := newAppsEnv(t)
	e.create(appsNewDeploy("p", 2, "nginx:1"))
	e.waitRolledOut("p", 2, "nginx:1")
	e.update("deployments", "p", func(o api.Object) {
		d := o.(*api.Deployment)
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
		d.Spec.Replicas = appsI32(3)
	})
	// Scaling applies while paused; the new template does not.
	e.waitFor("pods", "scaled while paused", func(objs []api.Object) bool {
		ps := appsActivePods(objs)
		if appsImages(ps)["nginx:2"] > 0 {
			t.Fatal("paused deployment rolled out")
		}
		return len(ps) == 3 && appsReadyCount(ps) == 3
	})
	e.waitFor("deployments", "paused condition", func(objs []api.Object) bool {
		c := objs[0].(*api.Deployment).Status.Condition(api.DeploymentProgressing)
		return c != nil && c.Reason == api.ReasonDeploymentPaused
	})
	e.update("deployments", "p", func(o api.Object) { o.(*api.Deployment).Spec.Paused = false })
	e.waitRolledOut("p", 3, "nginx:2")
	e.update("deployments", "p", func(o api.Object) { o.(*api.Deployment).Spec.Replicas = appsI32(1) })
	e.waitRolledOut("p", 1, "nginx:2")
}

func TestDeploymentRevisionHistoryLimit(t *testing.T) {
	e := newAppsEnv(t)
	d := appsNewDeploy("h", 1, "nginx:1")
	d.Spec.RevisionHistoryLimit = appsI32(1)
	e.create(d)
	e.waitRolledOut("h", 1, "nginx:1")
	for i := 2; i <= 4; i++ {
		img := fmt.Sprintf("nginx:%d", i)
		e.update("deployments", "h", appsSetImage(img))
		e.waitRolledOut("h", 1, img)
	}
	e.waitFor("replicasets", "history of 1 plus the current", func(objs []api.Object) bool {
		if len(objs) != 2 {
			return false
		}
		revs := map[int64]bool{}
		for _, o := range objs {
			revs[Revision(o)] = true
		}
		return revs[3] && revs[4]
	})
}

func TestDeploymentProgressDeadline(t *testing.T) {
	e := newAppsEnv(t)
	d := appsNewDeploy("slow", 2, "nginx:1")
	d.Spec.ProgressDeadlineSeconds = appsI32(2)
	e.create(d)
	e.waitRolledOut("slow", 2, "nginx:1")
	e.kubelet.setHold(func(p *api.Pod) bool { return p.Spec.Containers[0].Image == "nginx:2" })
	e.update("deployments", "slow", appsSetImage("nginx:2"))
	e.waitFor("deployments", "ProgressDeadlineExceeded", func(objs []api.Object) bool {
		c := objs[0].(*api.Deployment).Status.Condition(api.DeploymentProgressing)
		return c != nil && c.Status == api.ConditionFalse && c.Reason == api.ReasonProgressDeadlineExceeded
	})
	// Availability was kept: the old pods still serve.
	e.kubelet.setHold(nil)
	e.kubelet.release(e.ctx)
	e.waitRolledOut("slow", 2, "nginx:2")
}
