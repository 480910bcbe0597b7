package controller

import (
	"context"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func startGC(t *testing.T, cl *client.Client) {
	startController(t, NewGarbageCollector(testDeps(t, cl)).Run)
}

func TestGarbageCollectorDeletesDependentsOfADeletedOwner(t *testing.T) {
	cl := newTestAPI(t)
	ctx := context.Background()
	startGC(t, cl)
	owner := mustCreate(t, cl, newConfigMap("default", "owner"))
	other := mustCreate(t, cl, newConfigMap("default", "other"))
	mustCreate(t, cl, newPod("default", "dep", owner))
	mustCreate(t, cl, newPod("default", "two-owners", owner, other))
	mustCreate(t, cl, newPod("default", "unowned"))
	// A dependent whose owner never existed goes at once.
	ghost := newConfigMap("default", "ghost")
	ghost.UID = "no-such-uid"
	mustCreate(t, cl, newPod("default", "dangling", ghost))
	waitList(t, cl, "pods", "default", "the dangling pod to go", func(items []api.Object) bool {
		return len(items) == 3
	})

	if _, err := cl.Delete(ctx, kind("configmaps"), "default", "owner"); err != nil {
		t.Fatal(err)
	}
	pods := waitList(t, cl, "pods", "default", "the owned pod to go", func(items []api.Object) bool {
		return len(items) == 2
	})
	for _, p := range pods {
		m := p.GetObjectMeta()
		switch m.Name {
		case "unowned":
		case "two-owners":
			// One owner remains: the pod stays, without the reference to the other.
			if len(m.OwnerReferences) != 1 || m.OwnerReferences[0].Name != "other" {
				waitList(t, cl, "pods", "default", "the dangling reference to be dropped", func(items []api.Object) bool {
					for _, o := range items {
						if o.GetObjectMeta().Name == "two-owners" {
							return len(o.GetObjectMeta().OwnerReferences) == 1
						}
					}
					return false
				})
			}
		default:
			t.Fatalf("pod %s survived", m.Name)
		}
	}
}

func TestGarbageCollectorChecksTheOwnerUID(t *testing.T) {
	cl := newTestAPI(t)
	ctx := context.Background()
	owner := mustCreate(t, cl, newConfigMap("default", "owner"))
	mustCreate(t, cl, newPod("default", "dep", owner))
	// The owner is replaced by another object of the same name while no collector
	// runs: the dependent's owner is gone all the same.
	if _, err := cl.Delete(ctx, kind("configmaps"), "default", "owner"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, cl, newConfigMap("default", "owner"))
	startGC(t, cl)
	waitList(t, cl, "pods", "default", "the pod of the old owner to go", func(items []api.Object) bool {
		return len(items) == 0
	})
}

func TestGarbageCollectorOrphanKeepsDependents(t *testing.T) {
	cl := newTestAPI(t)
	ctx := context.Background()
	startGC(t, cl)
	owner := mustCreate(t, cl, newConfigMap("default", "owner"))
	other := mustCreate(t, cl, newConfigMap("default", "other"))
	mustCreate(t, cl, newPod("default", "dep", owner))
	mustCreate(t, cl, newPod("default", "both", owner, other))

	last, err := cl.DeleteWithOptions(ctx, kind("configmaps"), "default", "owner", client.DeleteOptions{PropagationPolicy: api.PropagationOrphan})
	if err != nil {
		t.Fatal(err)
	}
	if m := last.GetObjectMeta(); m.DeletionTimestamp == nil || !m.HasFinalizer(api.FinalizerOrphan) {
		t.Fatalf("an orphaning delete should mark the owner: %+v", m)
	}
	waitList(t, cl, "configmaps", "default", "the owner to go", func(items []api.Object) bool {
		return len(items) == 1
	})
	pods, err := cl.List(ctx, kind("pods"), "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("orphaned pods were deleted: %v", names(pods.Items))
	}
	for _, p := range pods.Items {
		for _, ref := range p.GetObjectMeta().OwnerReferences {
			if ref.UID == owner.GetObjectMeta().UID {
				t.Fatalf("pod %s still refers to the deleted owner", p.GetObjectMeta().Name)
			}
		}
	}
	if refs := podNamed(pods.Items, "both").GetObjectMeta().OwnerReferences; len(refs) != 1 || refs[0].Name != "other" {
		t.Fatalf("the other owner's reference was lost: %+v", refs)
	}
}

func podNamed(items []api.Object, name string) api.Object {
	for _, o := range items {
		if o.GetObjectMeta().Name == name {
			return o
		}
	}
	return nil
}

// TestFinalizersHoldDeletion checks the API server's generic rule: a delete only
// marks an object that has finalizers, and the update that empties them removes it.
func TestFinalizersHoldDeletion(t *testing.T) {
	cl := newTestAPI(t)
	ctx := context.Background()
	cm := newConfigMap("default", "held")
	cm.Finalizers = []string{"example.com/hold", "example.com/also"}
	mustCreate(t, cl, cm)
	last, err := cl.Delete(ctx, kind("configmaps"), "default", "held")
	if err != nil {
		t.Fatal(err)
	}
	if last.GetObjectMeta().DeletionTimestamp == nil {
		t.Fatal("delete of an object with finalizers did not mark it")
	}
	removeOne := func(f string) api.Object {
		cur, err := cl.Get(ctx, kind("configmaps"), "default", "held")
		if err != nil {
			t.Fatal(err)
		}
		cur.GetObjectMeta().RemoveFinalizer(f)
		out, err := cl.Update(ctx, cur)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := removeOne("example.com/hold"); out.GetObjectMeta().DeletionTimestamp == nil {
		t.Fatal("update lost the deletion timestamp")
	}
	if _, err := cl.Get(ctx, kind("configmaps"), "default", "held"); err != nil {
		t.Fatalf("object with a finalizer left was removed: %v", err)
	}
	removeOne("example.com/also")
	if _, err := cl.Get(ctx, kind("configmaps"), "default", "held"); !client.IsNotFound(err) {
		t.Fatalf("object whose finalizers are gone still exists: %v", err)
	}
	// A pod being stopped by its agent keeps its deletion timestamp without being
	// removed by an unrelated update.
	p := newPod("default", "bound")
	p.Spec.NodeName = "n1"
	mustCreate(t, cl, p)
	if _, err := cl.Delete(ctx, kind("pods"), "default", "bound"); err != nil {
		t.Fatal(err)
	}
	setPodReady(t, cl, p, false)
	if _, err := cl.Get(ctx, kind("pods"), "default", "bound"); err != nil {
		t.Fatalf("terminating pod removed by a status write: %v", err)
	}
}

// TestGarbageCollectorForegroundDeletion: a Deployment deleted with the Foreground
// policy stays, marked with the foregroundDeletion finalizer, while its ReplicaSet
// and pods are deleted; it goes only after them. A dependent whose reference does
// not block its owner's deletion holds nothing up.
func TestGarbageCollectorForegroundDeletion(t *testing.T) {
	e := newAppsEnv(t)
	startGC(t, e.cl)
	d := e.create(appsNewDeploy("fg", 2, "nginx:1")).(*api.Deployment)
	e.waitRolledOut("fg", 2, "nginx:1")
	const hold = "test.cloudbox.io/hold"
	// The pods linger after their delete, as on a node that stops them.
	for _, o := range e.waitFor("pods", "2 pods", func(objs []api.Object) bool { return len(objs) == 2 }) {
		change(t, e.cl, "pods", "default", o.GetObjectMeta().Name, func(o api.Object) {
			o.GetObjectMeta().Finalizers = append(o.GetObjectMeta().Finalizers, hold)
		})
	}
	no := false
	cm := newConfigMap("default", "loose")
	ref := ownerRef(d)
	ref.BlockOwnerDeletion = &no
	cm.OwnerReferences = []api.OwnerReference{ref}
	cm.Finalizers = []string{hold}
	mustCreate(t, e.cl, cm)

	if _, err := e.cl.DeleteWithOptions(e.ctx, kind("deployments"), "default", "fg", client.DeleteOptions{PropagationPolicy: api.PropagationForeground}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("pods", "pods being deleted", func(objs []api.Object) bool {
		for _, o := range objs {
			if o.GetObjectMeta().DeletionTimestamp == nil {
				return false
			}
		}
		return len(objs) == 2
	})
	e.waitFor("configmaps", "the loose dependent being deleted", func(objs []api.Object) bool {
		for _, o := range objs {
			if o.GetObjectMeta().Name == "loose" {
				return o.GetObjectMeta().DeletionTimestamp != nil
			}
		}
		return false
	})
	// The pods are still there, so are their ReplicaSet and the Deployment.
	for _, res := range []string{"replicasets", "deployments"} {
		l, err := e.cl.ListAll(e.ctx, kind(res), "default", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 1 {
			t.Fatalf("%d %s while the pods remain", len(l.Items), res)
		}
		m := l.Items[0].GetObjectMeta()
		if m.DeletionTimestamp == nil || !m.HasFinalizer(api.FinalizerForegroundDeletion) {
			t.Fatalf("%s %s: deletionTimestamp %v finalizers %v", res, m.Name, m.DeletionTimestamp, m.Finalizers)
		}
	}

	for _, o := range e.waitFor("pods", "2 pods", func(objs []api.Object) bool { return len(objs) == 2 }) {
		change(t, e.cl, "pods", "default", o.GetObjectMeta().Name, func(o api.Object) { o.GetObjectMeta().RemoveFinalizer(hold) })
	}
	e.waitFor("deployments", "the deployment gone", func(objs []api.Object) bool { return len(objs) == 0 })
	e.waitFor("replicasets", "the replicaset gone", func(objs []api.Object) bool { return len(objs) == 0 })
	e.waitFor("pods", "the pods gone", func(objs []api.Object) bool { return len(objs) == 0 })
	// The loose dependent did not hold the Deployment up: it is still there.
	if _, err := e.cl.Get(e.ctx, kind("configmaps"), "default", "loose"); err != nil {
		t.Fatalf("the non-blocking dependent: %v", err)
	}
	change(t, e.cl, "configmaps", "default", "loose", func(o api.Object) { o.GetObjectMeta().RemoveFinalizer(hold) })
}
