package controller

import (
	"context"
	"slices"
	"sort"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func newStatefulSet(name string, replicas int32) *api.StatefulSet {
	s := &api.StatefulSet{}
	s.Namespace, s.Name = "default", name
	s.Spec.Replicas = &replicas
	s.Spec.ServiceName = name
	s.Spec.Selector = &api.LabelSelector{MatchLabels: map[string]string{"app": name}}
	s.Spec.Template.Metadata.Labels = map[string]string{"app": name}
	s.Spec.Template.Spec.Containers = []api.Container{{Name: "c", Image: "busybox", VolumeMounts: []api.VolumeMount{{Name: "data", MountPath: "/data"}}}}
	claim := api.PersistentVolumeClaim{}
	claim.Name = "data"
	claim.Spec.AccessModes = []string{api.ReadWriteOnce}
	claim.Spec.Resources.Requests = api.ResourceList{api.ResourceStorage: api.MustParseQuantity("1Gi")}
	s.Spec.VolumeClaimTemplates = []api.PersistentVolumeClaim{claim}
	return s
}

func podNames(items []api.Object) []string {
	out := names(items)
	sort.Strings(out)
	return out
}

func getPod(t *testing.T, cl *client.Client, name string) *api.Pod {
	t.Helper()
	o, err := cl.Get(context.Background(), kind("pods"), "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.Pod)
}

func TestStatefulSetOrderedCreationClaimsAndReverseScaleDown(t *testing.T) {
	cl := newTestAPI(t)
	ctx := context.Background()
	startController(t, NewStatefulSetController(testDeps(t, cl)).Run)
	mustCreate(t, cl, newStatefulSet("web", 3))

	for i, name := range []string{"web-0", "web-1", "web-2"} {
		want := []string{"web-0", "web-1", "web-2"}[:i+1]
		pods := waitList(t, cl, "pods", "default", name+" to be created", func(items []api.Object) bool {
			return len(items) >= i+1
		})
		if got := podNames(pods); !slices.Equal(got, want) {
			t.Fatalf("before %s was Ready: pods %v, want %v", want[i], got, want)
		}
		p := getPod(t, cl, name)
		if p.Spec.Hostname != name || p.Spec.Subdomain != "web" {
			t.Fatalf("%s: hostname %q subdomain %q", name, p.Spec.Hostname, p.Spec.Subdomain)
		}
		if v := p.Spec.Volumes; len(v) != 1 || v[0].PersistentVolumeClaim == nil || v[0].PersistentVolumeClaim.ClaimName != "data-"+name {
			t.Fatalf("%s: volumes %+v", name, v)
		}
		if _, err := cl.Get(ctx, kind("pvc"), "default", "data-"+name); err != nil {
			t.Fatalf("claim of %s: %v", name, err)
		}
		setPodReady(t, cl, p, true)
	}
	waitList(t, cl, "statefulsets", "default", "status to count 3 ready", func(items []api.Object) bool {
		st := items[0].(*api.StatefulSet).Status
		return st.ReadyReplicas == 3 && st.Replicas == 3 && st.UpdatedReplicas == 3 && st.CurrentRevision == st.UpdateRevision
	})

	// A deleted pod comes back under its name, with its claim.
	old := getPod(t, cl, "web-1")
	if _, err := cl.Delete(ctx, kind("pods"), "default", "web-1"); err != nil {
		t.Fatal(err)
	}
	waitList(t, cl, "pods", "default", "web-1 to come back", func(items []api.Object) bool {
		p, _ := podNamed(items, "web-1").(*api.Pod)
		return p != nil && p.UID != old.UID
	})
	back := getPod(t, cl, "web-1")
	if back.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "data-web-1" {
		t.Fatalf("web-1 came back with %+v", back.Spec.Volumes)
	}
	setPodReady(t, cl, back, true)

	// Scale down: highest ordinal first, and the claims stay.
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	events, err := cl.Watch(wctx, kind("pods"), "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range events {
			if ev.Type == "DELETED" {
				deleted = append(deleted, ev.Object.GetObjectMeta().Name)
				if len(deleted) == 2 {
					return
				}
			}
		}
	}()
	one := int32(1)
	change(t, cl, "statefulsets", "default", "web", func(o api.Object) { o.(*api.StatefulSet).Spec.Replicas = &one })
	waitList(t, cl, "pods", "default", "scale down to web-0", func(items []api.Object) bool {
		return slices.Equal(podNames(items), []string{"web-0"})
	})
	<-done
	if !slices.Equal(deleted, []string{"web-2", "web-1"}) {
		t.Fatalf("scale-down order %v, want web-2 then web-1", deleted)
	}
	claims, err := cl.List(ctx, kind("pvc"), "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := podNames(claims.Items); !slices.Equal(got, []string{"data-web-0", "data-web-1", "data-web-2"}) {
		t.Fatalf("claims after scale-down: %v", got)
	}
}

func TestStatefulSetPinsPodsToTheClaimsNode(t *testing.T) {
	cl := newTestAPI(t)
	ctx := context.Background()
	startController(t, NewStatefulSetController(testDeps(t, cl)).Run)
	mustCreate(t, cl, newStatefulSet("db", 1))
	waitList(t, cl, "pods", "default", "db-0", func(items []api.Object) bool { return len(items) == 1 })
	// The agent binds the claim where db-0 ran.
	o, err := cl.Get(ctx, kind("pvc"), "default", "data-db-0")
	if err != nil {
		t.Fatal(err)
	}
	claim := o.(*api.PersistentVolumeClaim)
	claim.Annotations = map[string]string{api.AnnotationVolumeNode: "n7"}
	if _, err := cl.Update(ctx, claim); err != nil {
		t.Fatal(err)
	}
	old := getPod(t, cl, "db-0")
	if _, err := cl.Delete(ctx, kind("pods"), "default", "db-0"); err != nil {
		t.Fatal(err)
	}
	waitList(t, cl, "pods", "default", "db-0 to come back", func(items []api.Object) bool {
		return len(items) == 1 && items[0].GetObjectMeta().UID != old.UID
	})
	if sel := getPod(t, cl, "db-0").Spec.NodeSelector; sel[api.LabelHostname] != "n7" {
		t.Fatalf("db-0 came back with nodeSelector %v, want it pinned to n7", sel)
	}
}

func TestStatefulSetRollingUpdateHighestFirst(t *testing.T) {
	cl := newTestAPI(t)
	startController(t, NewStatefulSetController(testDeps(t, cl)).Run)
	mustCreate(t, cl, newStatefulSet("web", 2))
	for _, name := range []string{"web-0", "web-1"} {
		waitList(t, cl, "pods", "default", name, func(items []api.Object) bool { return podNamed(items, name) != nil })
		setPodReady(t, cl, getPod(t, cl, name), true)
	}
	change(t, cl, "statefulsets", "default", "web", func(o api.Object) {
		o.(*api.StatefulSet).Spec.Template.Spec.Containers[0].Image = "busybox:2"
	})
	image := func(items []api.Object, name string) string {
		if p, ok := podNamed(items, name).(*api.Pod); ok && p.DeletionTimestamp == nil {
			return p.Spec.Containers[0].Image
		}
		return ""
	}
	pods := waitList(t, cl, "pods", "default", "web-1 to be updated", func(items []api.Object) bool {
		return image(items, "web-1") == "busybox:2"
	})
	if image(pods, "web-0") != "busybox" {
		t.Fatalf("web-0 was replaced before web-1 was Ready")
	}
	setPodReady(t, cl, getPod(t, cl, "web-1"), true)
	waitList(t, cl, "pods", "default", "web-0 to be updated", func(items []api.Object) bool {
		return image(items, "web-0") == "busybox:2"
	})
}

// TestStatefulSetRevisionHistory: revisions as for DaemonSets, with status naming
// them: a revision stays while a pod runs it or status.currentRevision names it.
func TestStatefulSetRevisionHistory(t *testing.T) {
	cl := newTestAPI(t)
	ctx := context.Background()
	startController(t, NewStatefulSetController(testDeps(t, cl)).Run)
	startController(t, NewGarbageCollector(testDeps(t, cl)).Run)
	set := newStatefulSet("web", 1)
	set.Spec.UpdateStrategy = api.StatefulSetUpdateStrategy{Type: api.OnDeleteStatefulSetStrategyType}
	one := int32(1)
	set.Spec.RevisionHistoryLimit = &one
	set = mustCreate(t, cl, set).(*api.StatefulSet)

	name := func() string { return "web-" + templateHash(storedTemplate(t, cl, "statefulsets", "web")) }
	setImage := func(image string) string {
		change(t, cl, "statefulsets", "default", "web", func(o api.Object) {
			o.(*api.StatefulSet).Spec.Template.Spec.Containers[0].Image = image
		})
		return name()
	}
	waitStatus := func(what, current, update string) {
		t.Helper()
		waitList(t, cl, "statefulsets", "default", what, func(items []api.Object) bool {
			st := items[0].(*api.StatefulSet).Status
			return st.CurrentRevision == current && st.UpdateRevision == update
		})
	}

	r1 := name()
	revs := waitRevisions(t, cl, "web", "the first revision", map[string]int64{r1: 1})
	if ref := revs[r1].ControllerRef(); ref == nil || ref.UID != set.UID || ref.Kind != "StatefulSet" {
		t.Errorf("owner references %+v", revs[r1].OwnerReferences)
	}
	waitList(t, cl, "pods", "default", "web-0", func(items []api.Object) bool { return podNamed(items, "web-0") != nil })
	if got := getPod(t, cl, "web-0").Labels[api.LabelControllerRevisionHash]; got != r1 {
		t.Errorf("web-0 at revision %q, want %s", got, r1)
	}
	setPodReady(t, cl, getPod(t, cl, "web-0"), true)
	waitStatus("revision 1 current", r1, r1)

	// OnDelete: web-0 stays at r1 while the template moves on.
	r2 := setImage("busybox:2")
	waitRevisions(t, cl, "web", "revision 2", map[string]int64{r1: 1, r2: 2})
	waitStatus("revision 2 to be the update revision", r1, r2)
	setImage("busybox")
	waitRevisions(t, cl, "web", "revision 1 renumbered to 3", map[string]int64{r2: 2, r1: 3})
	waitStatus("revision 1 current again", r1, r1)
	r4 := setImage("busybox:4")
	waitRevisions(t, cl, "web", "revision 4", map[string]int64{r2: 2, r1: 3, r4: 4})
	// r2 and r4 are used by nothing; one old revision is kept.
	r5 := setImage("busybox:5")
	waitRevisions(t, cl, "web", "revision 2 pruned, 1 kept for web-0", map[string]int64{r1: 3, r4: 4, r5: 5})

	// A new web-0 runs r5 but r1 stays current until it is Ready.
	old := getPod(t, cl, "web-0")
	if _, err := cl.Delete(ctx, kind("pods"), "default", "web-0"); err != nil {
		t.Fatal(err)
	}
	waitList(t, cl, "pods", "default", "web-0 to come back", func(items []api.Object) bool {
		p, _ := podNamed(items, "web-0").(*api.Pod)
		return p != nil && p.UID != old.UID
	})
	if got := getPod(t, cl, "web-0").Labels[api.LabelControllerRevisionHash]; got != r5 {
		t.Errorf("the new web-0 at revision %q, want %s", got, r5)
	}
	waitStatus("revision 1 still current", r1, r5)
	waitRevisions(t, cl, "web", "revision 1 kept while current", map[string]int64{r1: 3, r4: 4, r5: 5})
	setPodReady(t, cl, getPod(t, cl, "web-0"), true)
	waitStatus("revision 5 current", r5, r5)
	waitRevisions(t, cl, "web", "revision 1 pruned", map[string]int64{r4: 4, r5: 5})

	if _, err := cl.Delete(ctx, kind("statefulsets"), "default", "web"); err != nil {
		t.Fatal(err)
	}
	waitRevisions(t, cl, "web", "the revisions to be deleted with the set", map[string]int64{})
}
