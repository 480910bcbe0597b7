package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// fakeKubelet plays the agent's part for controller tests: it watches pods and marks
// each Running and Ready, unless hold says to keep it unready.
type fakeKubelet struct {
	t  *testing.T
	cl *client.Client
	mu sync.Mutex
	// hold keeps pods it returns true for Pending and unready.
	hold func(*api.Pod) bool
}

func startFakeKubelet(t *testing.T, ctx context.Context, cl *client.Client) *fakeKubelet {
	k := &fakeKubelet{t: t, cl: cl}
	podKind, _ := api.LookupKind("pods")
	inf := client.NewInformer(cl, podKind, "", client.ListOptions{}, nil)
	work := make(chan *api.Pod, 1024)
	inf.AddHandler(client.Handler{
		OnAdd:    func(o api.Object) { work <- o.(*api.Pod) },
		OnUpdate: func(_, o api.Object) { work <- o.(*api.Pod) },
	})
	go inf.Run(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case p := <-work:
				k.mark(ctx, p)
			}
		}
	}()
	return k
}

func (k *fakeKubelet) setHold(h func(*api.Pod) bool) {
	k.mu.Lock()
	k.hold = h
	k.mu.Unlock()
}

func (k *fakeKubelet) mark(ctx context.Context, p *api.Pod) {
	k.mu.Lock()
	hold := k.hold
	k.mu.Unlock()
	if p.DeletionTimestamp != nil || p.IsTerminal() || podReady(p) || (hold != nil && hold(p)) {
		return
	}
	next := api.DeepCopy(p).(*api.Pod)
	next.Status.Phase = api.PodRunning
	next.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: api.ConditionTrue})
	if _, err := k.cl.UpdateStatus(ctx, next); err != nil && ctx.Err() == nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		k.t.Logf("fake kubelet: %v", err)
	}
}

// release marks pods Ready that hold kept back (call after clearing hold).
func (k *fakeKubelet) release(ctx context.Context) {
	podKind, _ := api.LookupKind("pods")
	l, err := k.cl.List(ctx, podKind, "", client.ListOptions{})
	if err != nil {
		k.t.Fatal(err)
	}
	for _, o := range l.Items {
		k.mark(ctx, o.(*api.Pod))
	}
}

// appsEnv is a test API with both controllers and the fake kubelet running.
type appsEnv struct {
	t       *testing.T
	ctx     context.Context
	cl      *client.Client
	kubelet *fakeKubelet
}

func newAppsEnv(t *testing.T) *appsEnv {
	cl := newTestAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	d := testDeps(t, cl)
	rsc := NewReplicaSetController(d)
	dc := NewDeploymentController(d)
	wg.Add(2)
	go func() { defer wg.Done(); rsc.Run(ctx) }()
	go func() { defer wg.Done(); dc.Run(ctx) }()
	return &appsEnv{t: t, ctx: ctx, cl: cl, kubelet: startFakeKubelet(t, ctx, cl)}
}

// waitFor watches kind in the default namespace until cond, given every object of
// the kind, holds; it fails the test after a timeout.
func (e *appsEnv) waitFor(resource, what string, cond func([]api.Object) bool) []api.Object {
	e.t.Helper()
	k, _ := api.LookupKind(resource)
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	l, err := e.cl.List(ctx, k, "default", client.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	items := map[string]api.Object{}
	for _, o := range l.Items {
		items[o.GetObjectMeta().Name] = o
	}
	snapshot := func() []api.Object {
		out := make([]api.Object, 0, len(items))
		for _, o := range items {
			out = append(out, o)
		}
		return out
	}
	if s := snapshot(); cond(s) {
		return s
	}
	ch, err := e.cl.Watch(ctx, k, "default", client.ListOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		e.t.Fatal(err)
	}
	for ev := range ch {
		if ev.Err != nil {
			break
		}
		if ev.Type == "BOOKMARK" {
			continue
		}
		if ev.Type == "DELETED" {
			delete(items, ev.Object.GetObjectMeta().Name)
		} else {
			items[ev.Object.GetObjectMeta().Name] = ev.Object
		}
		if s := snapshot(); cond(s) {
			return s
		}
	}
	e.t.Fatalf("timed out waiting for %s", what)
	return nil
}

func (e *appsEnv) create(o api.Object) api.Object {
	e.t.Helper()
	out, err := e.cl.Create(e.ctx, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// appsActivePods returns the pods not being deleted and not finished.
func appsActivePods(objs []api.Object) []*api.Pod {
	var out []*api.Pod
	for _, o := range objs {
		if p := o.(*api.Pod); p.DeletionTimestamp == nil && !p.IsTerminal() {
			out = append(out, p)
		}
	}
	return out
}

func appsReadyCount(pods []*api.Pod) int {
	n := 0
	for _, p := range pods {
		if podReady(p) {
			n++
		}
	}
	return n
}

func appsTemplate(app, image string) api.PodTemplateSpec {
	return api.PodTemplateSpec{
		Metadata: api.ObjectMeta{Labels: map[string]string{"app": app}},
		// No scheduler runs in these tests; the name keeps it so in any case.
		Spec: api.PodSpec{SchedulerName: "none", Containers: []api.Container{{Name: "c", Image: image}}},
	}
}

func appsI32(n int32) *int32 { return &n }
