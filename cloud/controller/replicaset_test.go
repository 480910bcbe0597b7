package controller

import (
	"fmt"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func appsNewRS(name string, n int32) *api.ReplicaSet {
	rs := &api.ReplicaSet{TypeMeta: api.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}}
	rs.Name, rs.Namespace = name, "default"
	rs.Spec.Replicas = appsI32(n)
	rs.Spec.Selector = &api.LabelSelector{MatchLabels: map[string]string{"app": name}}
	rs.Spec.Template = appsTemplate(name, "nginx:1")
	return rs
}

func appsPodsOf(rs *api.ReplicaSet, objs []api.Object) []*api.Pod {
	var out []*api.Pod
	for _, p := range appsActivePods(objs) {
		if p.IsControlledBy(rs.UID) {
			out = append(out, p)
		}
	}
	return out
}

func (e *appsEnv) waitOwned(rs *api.ReplicaSet, n int) []*api.Pod {
	e.t.Helper()
	var got []*api.Pod
	e.waitFor("pods", fmt.Sprintf("%d ready pods of %s", n, rs.Name), func(objs []api.Object) bool {
		got = appsPodsOf(rs, objs)
		return len(got) == n && appsReadyCount(got) == n
	})
	return got
}

func TestReplicaSetScalesAndHeals(t *testing.T) {
	e := newAppsEnv(t)
	rs := e.create(appsNewRS("web", 3)).(*api.ReplicaSet)
	pods := e.waitOwned(rs, 3)
	for _, p := range pods {
		if ref := p.ControllerRef(); ref == nil || ref.Kind != "ReplicaSet" || ref.Name != "web" {
			t.Fatalf("pod %s owner %+v", p.Name, p.OwnerReferences)
		}
		if len(p.Name) != len("web-")+5 {
			t.Fatalf("pod name %q", p.Name)
		}
	}
	e.waitFor("events", "a SuccessfulCreate event on the ReplicaSet for each pod", func(objs []api.Object) bool {
		created := map[string]bool{}
		for _, o := range objs {
			ev := o.(*api.Event)
			if ev.Reason == "SuccessfulCreate" && ev.InvolvedObject.Kind == "ReplicaSet" && ev.InvolvedObject.UID == rs.UID {
				created[ev.Message] = true
			}
		}
		for _, p := range pods {
			if !created["Created pod: "+p.Name] {
				return false
			}
		}
		return true
	})
	e.waitFor("replicasets", "status 3 ready", func(objs []api.Object) bool {
		for _, o := range objs {
			if r := o.(*api.ReplicaSet); r.Name == "web" {
				return r.Status.Replicas == 3 && r.Status.ReadyReplicas == 3 && r.Status.AvailableReplicas == 3 && r.Status.ObservedGeneration == r.Generation
			}
		}
		return false
	})

	// Self-healing: a deleted pod is replaced.
	podKind, _ := api.LookupKind("pods")
	if _, err := e.cl.Delete(e.ctx, podKind, "default", pods[0].Name); err != nil {
		t.Fatal(err)
	}
	e.waitFor("pods", "replacement after delete", func(objs []api.Object) bool {
		got := appsPodsOf(rs, objs)
		for _, p := range got {
			if p.Name == pods[0].Name {
				return false
			}
		}
		return len(got) == 3 && appsReadyCount(got) == 3
	})

	// A failed pod is replaced too.
	cur, _ := e.cl.Get(e.ctx, podKind, "default", pods[1].Name)
	failed := cur.(*api.Pod)
	failed.Status.Phase = api.PodFailed
	if _, err := e.cl.UpdateStatus(e.ctx, failed); err != nil {
		t.Fatal(err)
	}
	e.waitOwned(rs, 3)

	// Scale up and down.
	for _, n := range []int32{5, 1} {
		e.update("replicasets", "web", func(o api.Object) { o.(*api.ReplicaSet).Spec.Replicas = appsI32(n) })
		e.waitOwned(rs, int(n))
	}
}

func TestReplicaSetScaleDownPrefersNotReady(t *testing.T) {
	e := newAppsEnv(t)
	rs := e.create(appsNewRS("pick", 2)).(*api.ReplicaSet)
	e.waitOwned(rs, 2)
	e.kubelet.setHold(func(*api.Pod) bool { return true })
	e.update("replicasets", "pick", func(o api.Object) { o.(*api.ReplicaSet).Spec.Replicas = appsI32(3) })
	e.waitFor("pods", "3 pods, 1 unready", func(objs []api.Object) bool {
		got := appsPodsOf(rs, objs)
		return len(got) == 3 && appsReadyCount(got) == 2
	})
	e.update("replicasets", "pick", func(o api.Object) { o.(*api.ReplicaSet).Spec.Replicas = appsI32(2) })
	e.waitFor("pods", "the unready pod removed", func(objs []api.Object) bool {
		got := appsPodsOf(rs, objs)
		return len(got) == 2 && appsReadyCount(got) == 2
	})
}

func TestReplicaSetAdoptsAndReleases(t *testing.T) {
	e := newAppsEnv(t)
	orphan := &api.Pod{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Pod"}}
	orphan.Name, orphan.Namespace = "stray", "default"
	orphan.Labels = map[string]string{"app": "adopt"}
	tmpl := appsTemplate("adopt", "nginx:1")
	orphan.Spec = tmpl.Spec
	e.create(orphan)
	e.waitFor("pods", "orphan ready", func(objs []api.Object) bool { return appsReadyCount(appsActivePods(objs)) == 1 })

	rs := e.create(appsNewRS("adopt", 2)).(*api.ReplicaSet)
	got := e.waitOwned(rs, 2)
	adopted := false
	for _, p := range got {
		adopted = adopted || p.Name == "stray"
	}
	if !adopted {
		t.Fatalf("orphan not adopted: %v", got)
	}

	// Relabel the adopted pod: it is released and replaced.
	e.update("pods", "stray", func(o api.Object) { o.(*api.Pod).Labels = map[string]string{"app": "other"} })
	e.waitFor("pods", "release and replacement", func(objs []api.Object) bool {
		var stray *api.Pod
		for _, o := range objs {
			if o.GetObjectMeta().Name == "stray" {
				stray = o.(*api.Pod)
			}
		}
		return stray != nil && stray.ControllerRef() == nil && len(appsPodsOf(rs, objs)) == 2 && appsReadyCount(appsPodsOf(rs, objs)) == 2
	})
}

// update reads resource name, applies change and writes it, again on conflicts (the
// controllers write status concurrently).
func (e *appsEnv) update(resource, name string, change func(api.Object)) api.Object {
	e.t.Helper()
	k, _ := api.LookupKind(resource)
	for i := 0; ; i++ {
		o, err := e.cl.Get(e.ctx, k, "default", name)
		if err != nil {
			e.t.Fatal(err)
		}
		change(o)
		out, err := e.cl.Update(e.ctx, o)
		if err == nil {
			return out
		}
		if !client.IsConflict(err) || i > 20 {
			e.t.Fatal(err)
		}
	}
}
