package controller

import (
	"context"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func TestNamespaceDeletionRemovesEverythingThenTheNamespace(t *testing.T) {
	cl := newTestAPI(t)
	ctx := context.Background()
	startController(t, NewNamespaceController(testDeps(t, cl)).Run)
	ns := &api.Namespace{}
	ns.Name = "team"
	mustCreate(t, cl, ns)
	mustCreate(t, cl, newConfigMap("team", "conf"))
	sec := &api.Secret{}
	sec.Namespace, sec.Name = "team", "creds"
	sec.StringData = map[string]string{"k": "v"}
	mustCreate(t, cl, sec)
	mustCreate(t, cl, newPod("team", "pending"))
	running := newPod("team", "running")
	running.Spec.NodeName = "n1"
	mustCreate(t, cl, running)
	mustCreate(t, cl, newConfigMap("default", "elsewhere"))

	last, err := cl.Delete(ctx, kind("namespaces"), "", "team")
	if err != nil {
		t.Fatal(err)
	}
	if got := last.(*api.Namespace); got.DeletionTimestamp == nil || got.Status.Phase != api.NamespaceTerminating {
		t.Fatalf("deleted namespace: deletionTimestamp %v phase %q", got.DeletionTimestamp, got.Status.Phase)
	}
	if _, err := cl.Create(ctx, newConfigMap("team", "late")); err == nil {
		t.Fatal("created into a terminating namespace")
	}
	// The pod on a node is stopped gracefully: the test plays its agent.
	waitList(t, cl, "pods", "team", "the running pod to be marked", func(items []api.Object) bool {
		return len(items) == 1 && items[0].GetObjectMeta().DeletionTimestamp != nil
	})
	if _, err := cl.Get(ctx, kind("namespaces"), "", "team"); err != nil {
		t.Fatalf("namespace went before its pods: %v", err)
	}
	zero := int64(0)
	if _, err := cl.DeleteWithGrace(ctx, kind("pods"), "team", "running", &zero); err != nil {
		t.Fatal(err)
	}
	waitList(t, cl, "namespaces", "", "the namespace to go", func(items []api.Object) bool {
		return podNamed(items, "team") == nil
	})
	for _, r := range []string{"configmaps", "secrets", "pods"} {
		l, err := cl.List(ctx, kind(r), "team", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) > 0 {
			t.Fatalf("%s left in the deleted namespace: %v", r, names(l.Items))
		}
	}
	if _, err := cl.Get(ctx, kind("configmaps"), "default", "elsewhere"); err != nil {
		t.Fatalf("another namespace's object was touched: %v", err)
	}
}
