package controller

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// dsKubelet plays every node's agent for DaemonSet tests: it marks pods Running and
// Ready unless hold says not to, and finishes graceful deletes (as an agent does once
// the containers have stopped).
type dsKubelet struct {
	mu   sync.Mutex
	hold func(*api.Pod) bool
}

func startDSKubelet(t *testing.T, cl *client.Client) *dsKubelet {
	k := &dsKubelet{}
	inf := client.NewInformer(cl, kind("pods"), "", client.ListOptions{}, nil)
	work := make(chan *api.Pod, 1024)
	inf.AddHandler(client.Handler{
		OnAdd:    func(o api.Object) { work <- o.(*api.Pod) },
		OnUpdate: func(_, o api.Object) { work <- o.(*api.Pod) },
	})
	startController(t, func(ctx context.Context) {
		go inf.Run(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case p := <-work:
				k.act(ctx, t, cl, p)
			}
		}
	})
	return k
}

func (k *dsKubelet) setHold(h func(*api.Pod) bool) {
	k.mu.Lock()
	k.hold = h
	k.mu.Unlock()
}

func (k *dsKubelet) act(ctx context.Context, t *testing.T, cl *client.Client, p *api.Pod) {
	k.mu.Lock()
	hold := k.hold
	k.mu.Unlock()
	var err error
	switch {
	case p.DeletionTimestamp != nil:
		zero := int64(0)
		_, err = cl.DeleteWithGrace(ctx, kind("pods"), p.Namespace, p.Name, &zero)
	case p.IsTerminal() || podReady(p) || (hold != nil && hold(p)):
	default:
		next := api.DeepCopy(p).(*api.Pod)
		next.Status.Phase = api.PodRunning
		next.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: api.ConditionTrue})
		_, err = cl.UpdateStatus(ctx, next)
	}
	if err != nil && ctx.Err() == nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		t.Logf("test kubelet: %v", err)
	}
}

func dsNewNode(t *testing.T, cl *client.Client, name string, labels map[string]string, unschedulable bool) {
	t.Helper()
	n := &api.Node{}
	n.Name, n.Labels = name, labels
	n.Spec.Unschedulable = unschedulable
	mustCreate(t, cl, n)
}

func dsNew(name string, nodeSelector map[string]string) *api.DaemonSet {
	ds := &api.DaemonSet{}
	ds.Namespace, ds.Name = "default", name
	ds.Spec.Selector = &api.LabelSelector{MatchLabels: map[string]string{"app": name}}
	ds.Spec.Template.Metadata.Labels = map[string]string{"app": name}
	ds.Spec.Template.Spec.NodeSelector = nodeSelector
	ds.Spec.Template.Spec.Containers = []api.Container{{Name: "c", Image: "busybox:1"}}
	return ds
}

// dsPodsByNode maps node name to the active (not deleting, not finished) pods on it.
func dsPodsByNode(items []api.Object) map[string][]*api.Pod {
	out := map[string][]*api.Pod{}
	for _, p := range appsActivePods(items) {
		out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p)
	}
	return out
}

func dsNodes(m map[string][]*api.Pod) []string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// dsWaitNodes waits until the set's active pods are one on each of want.
func dsWaitNodes(t *testing.T, cl *client.Client, what string, want ...string) map[string][]*api.Pod {
	t.Helper()
	var got map[string][]*api.Pod
	waitList(t, cl, "pods", "default", what, func(items []api.Object) bool {
		got = dsPodsByNode(items)
		if !slices.Equal(dsNodes(got), want) {
			return false
		}
		for _, ps := range got {
			if len(ps) != 1 {
				return false
			}
		}
		return true
	})
	return got
}

func dsWaitStatus(t *testing.T, cl *client.Client, what string, want api.DaemonSetStatus) {
	t.Helper()
	var last api.DaemonSetStatus
	waitList(t, cl, "daemonsets", "default", what, func(items []api.Object) bool {
		ds := items[0].(*api.DaemonSet)
		last = ds.Status
		want.ObservedGeneration = ds.Generation
		return last == want
	})
}

func TestDaemonSetFollowsNodes(t *testing.T) {
	cl := newTestAPI(t)
	ctx := context.Background()
	startDSKubelet(t, cl)
	startController(t, NewDaemonSetController(testDeps(t, cl)).Run)

	ssd := map[string]string{"disk": "ssd"}
	dsNewNode(t, cl, "n1", ssd, false)
	dsNewNode(t, cl, "n2", ssd, false) // never heartbeats: NotReady nodes run daemons too
	dsNewNode(t, cl, "n3", map[string]string{"disk": "hdd"}, false)
	dsNewNode(t, cl, "n4", ssd, true)
	ds := mustCreate(t, cl, dsNew("agent", ssd)).(*api.DaemonSet)

	pods := dsWaitNodes(t, cl, "a pod on n1 and n2", "n1", "n2")
	for node, ps := range pods {
		p := ps[0]
		if ref := p.ControllerRef(); ref == nil || ref.UID != ds.UID || ref.Kind != "DaemonSet" {
			t.Errorf("pod on %s: controller reference %+v", node, p.OwnerReferences)
		}
		if p.Labels["app"] != "agent" || p.Labels[api.LabelControllerRevisionHash] != templateHash(&ds.Spec.Template) {
			t.Errorf("pod on %s: labels %v", node, p.Labels)
		}
	}
	dsWaitStatus(t, cl, "status of 2 ready pods", api.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2,
		NumberReady: 2, UpdatedNumberScheduled: 2, NumberAvailable: 2})

	// A node that joins gets a pod.
	dsNewNode(t, cl, "n5", ssd, false)
	dsWaitNodes(t, cl, "a pod on the new node n5", "n1", "n2", "n5")

	// A node that stops matching loses it; one that starts matching gets one.
	change(t, cl, "nodes", "", "n1", func(o api.Object) { o.(*api.Node).Labels["disk"] = "hdd" })
	change(t, cl, "nodes", "", "n3", func(o api.Object) { o.(*api.Node).Labels["disk"] = "ssd" })
	dsWaitNodes(t, cl, "the pod to move from n1 to n3", "n2", "n3", "n5")

	// A deleted node's pod goes, with no agent left to stop it.
	if _, err := cl.Delete(ctx, kind("nodes"), "", "n2"); err != nil {
		t.Fatal(err)
	}
	waitList(t, cl, "pods", "default", "n2's pod to be removed", func(items []api.Object) bool {
		for _, o := range items {
			if o.(*api.Pod).Spec.NodeName == "n2" {
				return false
			}
		}
		return true
	})

	// A failed pod is replaced.
	failed := dsWaitNodes(t, cl, "pods on n3 and n5", "n3", "n5")["n5"][0]
	for {
		cur := getPod(t, cl, failed.Name)
		cur.Status.Phase = api.PodFailed
		cur.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: api.ConditionFalse})
		if _, err := cl.UpdateStatus(ctx, cur); client.IsConflict(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		break
	}
	waitList(t, cl, "pods", "default", "the failed pod to be replaced", func(items []api.Object) bool {
		got := dsPodsByNode(items)["n5"]
		return len(got) == 1 && got[0].Name != failed.Name && podReady(got[0])
	})
	dsWaitStatus(t, cl, "status of 2 ready pods", api.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2,
		NumberReady: 2, UpdatedNumberScheduled: 2, NumberAvailable: 2})
}

func TestDaemonSetRollingUpdate(t *testing.T) {
	for _, maxUnavailable := range []int32{1, 2} {
		t.Run(fmt.Sprintf("maxUnavailable=%d", maxUnavailable), func(t *testing.T) {
			cl := newTestAPI(t)
			kl := startDSKubelet(t, cl)
			startController(t, NewDaemonSetController(testDeps(t, cl)).Run)
			nodes := []string{"n1", "n2", "n3", "n4"}
			for _, n := range nodes {
				dsNewNode(t, cl, n, nil, false)
			}
			ds := dsNew("agent", nil)
			mu := api.FromInt(maxUnavailable)
			ds.Spec.UpdateStrategy.RollingUpdate = &api.RollingUpdateDaemonSet{MaxUnavailable: &mu}
			ds = mustCreate(t, cl, ds).(*api.DaemonSet)
			oldHash := templateHash(&ds.Spec.Template)
			dsWaitNodes(t, cl, "a pod on every node", nodes...)
			dsWaitStatus(t, cl, "4 ready pods", api.DaemonSetStatus{DesiredNumberScheduled: 4, CurrentNumberScheduled: 4,
				NumberReady: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4})

			// New pods stay unready until the test says; the rollout must then never
			// leave more than maxUnavailable nodes without a ready pod.
			kl.setHold(func(p *api.Pod) bool { return p.Labels[api.LabelControllerRevisionHash] != oldHash })
			change(t, cl, "daemonsets", "default", "agent", func(o api.Object) {
				o.(*api.DaemonSet).Spec.Template.Spec.Containers[0].Image = "busybox:2"
			})
			check := func(items []api.Object) (newUnready []*api.Pod, updatedReady int) {
				withReady := 0
				for _, ps := range dsPodsByNode(items) {
					p := ps[0]
					if len(ps) > 1 {
						t.Fatalf("two pods on node %s: %s and %s", p.Spec.NodeName, p.Name, ps[1].Name)
					}
					ready := podReady(p)
					if ready {
						withReady++
					}
					if p.Labels[api.LabelControllerRevisionHash] != oldHash {
						if ready {
							updatedReady++
						} else {
							newUnready = append(newUnready, p)
						}
					}
				}
				if unavailable := len(nodes) - withReady; unavailable > int(maxUnavailable) {
					t.Fatalf("%d nodes without a ready pod, maxUnavailable %d", unavailable, maxUnavailable)
				}
				return newUnready, updatedReady
			}
			for done := 0; done < len(nodes); {
				var batch []*api.Pod
				waitList(t, cl, "pods", "default", "the next new pods", func(items []api.Object) bool {
					var n int
					batch, n = check(items)
					// The step is complete once every pod the budget allows is made.
					return len(batch) == min(int(maxUnavailable), len(nodes)-n)
				})
				for _, p := range batch {
					setPodReady(t, cl, p, true)
				}
				done += len(batch)
			}
			waitList(t, cl, "pods", "default", "every pod updated and ready", func(items []api.Object) bool {
				_, n := check(items)
				return n == len(nodes)
			})
			dsWaitStatus(t, cl, "4 updated ready pods", api.DaemonSetStatus{DesiredNumberScheduled: 4, CurrentNumberScheduled: 4,
				NumberReady: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4})
		})
	}
}

func TestDaemonSetNodeFit(t *testing.T) {
	tol := func(key, op, effect string) api.Toleration {
		return api.Toleration{Key: key, Operator: op, Effect: effect}
	}
	tests := []struct {
		name          string
		selector      map[string]string
		tolerations   []api.Toleration
		labels        map[string]string
		unschedulable bool
		taints        []api.Taint
		run, keep     bool
	}{
		{name: "plain node", run: true, keep: true},
		{name: "selector matches", selector: map[string]string{"a": "1"}, labels: map[string]string{"a": "1"}, run: true, keep: true},
		{name: "selector does not match", selector: map[string]string{"a": "1"}, labels: map[string]string{"a": "2"}},
		{name: "cordoned", unschedulable: true, keep: true},
		{name: "cordon tolerated", unschedulable: true, tolerations: []api.Toleration{tol(dsUnschedulableTaint, api.TolerationOpExists, api.TaintNoSchedule)}, run: true, keep: true},
		{name: "NoSchedule taint", taints: []api.Taint{{Key: "k", Effect: api.TaintNoSchedule}}, keep: true},
		{name: "NoExecute taint", taints: []api.Taint{{Key: "k", Effect: api.TaintNoExecute}}},
		{name: "PreferNoSchedule taint", taints: []api.Taint{{Key: "k", Effect: api.TaintPreferNoSchedule}}, run: true, keep: true},
		{name: "taint tolerated", taints: []api.Taint{{Key: "k", Effect: api.TaintNoExecute}}, tolerations: []api.Toleration{tol("", api.TolerationOpExists, "")}, run: true, keep: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := &api.PodTemplateSpec{Spec: api.PodSpec{NodeSelector: tt.selector, Tolerations: tt.tolerations}}
			n := &api.Node{ObjectMeta: api.ObjectMeta{Name: "n", Labels: tt.labels}, Spec: api.NodeSpec{Unschedulable: tt.unschedulable, Taints: tt.taints}}
			if run, keep := dsNodeFit(tmpl, n); run != tt.run || keep != tt.keep {
				t.Errorf("dsNodeFit = run %v keep %v, want run %v keep %v", run, keep, tt.run, tt.keep)
			}
		})
	}
}

// TestDaemonSetRevisionHistory: a ControllerRevision per template, owned by the set,
// numbered in the order the templates were current; going back renumbers the old
// revision; revisionHistoryLimit prunes the oldest that no pod runs; the garbage
// collector deletes them with the set.
func TestDaemonSetRevisionHistory(t *testing.T) {
	cl := newTestAPI(t)
	ctx := context.Background()
	startDSKubelet(t, cl)
	startController(t, NewDaemonSetController(testDeps(t, cl)).Run)
	startController(t, NewGarbageCollector(testDeps(t, cl)).Run)
	dsNewNode(t, cl, "n1", nil, false)
	ds := dsNew("agent", nil)
	two := int32(2)
	ds.Spec.RevisionHistoryLimit = &two
	ds.Annotations = map[string]string{api.AnnotationChangeCause: "first"}
	ds = mustCreate(t, cl, ds).(*api.DaemonSet)

	// name returns the revision name of the set's template as stored now.
	name := func() string { return "agent-" + templateHash(storedTemplate(t, cl, "daemonsets", "agent")) }
	setImage := func(image string) string {
		change(t, cl, "daemonsets", "default", "agent", func(o api.Object) {
			o.(*api.DaemonSet).Spec.Template.Spec.Containers[0].Image = image
		})
		return name()
	}
	// podAt waits until n1's pod runs the revision named rev.
	podAt := func(rev string) {
		t.Helper()
		waitList(t, cl, "pods", "default", "n1's pod at "+rev, func(items []api.Object) bool {
			ps := dsPodsByNode(items)["n1"]
			return len(ps) == 1 && "agent-"+ps[0].Labels[api.LabelControllerRevisionHash] == rev && podReady(ps[0])
		})
	}

	r1 := name()
	revs := waitRevisions(t, cl, "agent", "the first revision", map[string]int64{r1: 1})
	first := revs[r1]
	if ref := first.ControllerRef(); ref == nil || ref.UID != ds.UID || ref.Kind != "DaemonSet" {
		t.Errorf("owner references %+v", first.OwnerReferences)
	}
	if first.Labels[api.LabelControllerRevisionHash] != templateHash(&ds.Spec.Template) || first.Labels["app"] != "agent" {
		t.Errorf("labels %v", first.Labels)
	}
	if first.Annotations[api.AnnotationChangeCause] != "first" {
		t.Errorf("annotations %v, want the set's change cause", first.Annotations)
	}
	if first.Data == nil || templateHash(first.Data) != templateHash(&ds.Spec.Template) {
		t.Errorf("data %+v is not the set's template", first.Data)
	}
	podAt(r1)

	// A new template is a new revision, numbered next.
	r2 := setImage("busybox:2")
	waitRevisions(t, cl, "agent", "revision 2", map[string]int64{r1: 1, r2: 2})
	podAt(r2)

	// Going back renumbers the old revision instead of making another.
	if back := setImage("busybox:1"); back != r1 {
		t.Fatalf("the first template hashes to %s now, %s before", back, r1)
	}
	waitRevisions(t, cl, "agent", "revision 1 renumbered to 3", map[string]int64{r2: 2, r1: 3})
	podAt(r1)

	// Two old revisions are kept besides the current one.
	r4 := setImage("busybox:4")
	waitRevisions(t, cl, "agent", "revision 4", map[string]int64{r2: 2, r1: 3, r4: 4})
	podAt(r4)
	r5 := setImage("busybox:5")
	waitRevisions(t, cl, "agent", "revision 2 pruned", map[string]int64{r1: 3, r4: 4, r5: 5})
	podAt(r5)

	// A revision a pod still runs is kept, whatever the limit: with OnDelete the pod
	// stays at revision 5 through the next template.
	change(t, cl, "daemonsets", "default", "agent", func(o api.Object) {
		s := &o.(*api.DaemonSet).Spec
		s.UpdateStrategy = api.DaemonSetUpdateStrategy{Type: api.OnDeleteDaemonSetStrategyType}
		zero := int32(0)
		s.RevisionHistoryLimit = &zero
	})
	waitRevisions(t, cl, "agent", "all but the current revision pruned", map[string]int64{r5: 5})
	r6 := setImage("busybox:6")
	waitRevisions(t, cl, "agent", "revision 6, and 5 that the pod runs", map[string]int64{r5: 5, r6: 6})
	pod := dsWaitNodes(t, cl, "n1's pod", "n1")["n1"][0]
	if _, err := cl.Delete(ctx, kind("pods"), "default", pod.Name); err != nil {
		t.Fatal(err)
	}
	podAt(r6)
	waitRevisions(t, cl, "agent", "revision 5 pruned once no pod runs it", map[string]int64{r6: 6})

	// The revisions go with the set.
	if _, err := cl.Delete(ctx, kind("daemonsets"), "default", "agent"); err != nil {
		t.Fatal(err)
	}
	waitRevisions(t, cl, "agent", "the revisions to be deleted with the set", map[string]int64{})
}
