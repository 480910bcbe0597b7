package scheduler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// fakeView is the View border: nodes and pods the test sets, safe for concurrent use.
type fakeView struct {
	mu    sync.Mutex
	nodes []*api.Node
	pods  map[string][]*api.Pod // by node name
}

func newView(nodes ...*api.Node) *fakeView {
	return &fakeView{nodes: nodes, pods: map[string][]*api.Pod{}}
}

func (v *fakeView) Nodes() []*api.Node {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.nodes)
}

func (v *fakeView) PodsOnNode(name string) []*api.Pod {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.pods[name])
}

// place shows pod bound to node, as a watch would.
func (v *fakeView) place(p *api.Pod, node string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := *p
	c.Spec.NodeName = node
	v.pods[node] = append(v.pods[node], &c)
}

// setNodes replaces the nodes, as node watch events would.
func (v *fakeView) setNodes(nodes ...*api.Node) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.nodes = nodes
}

type binding struct{ pod, node string }

type unschedulable struct{ pod, message string }

// recordingBinder is the Binder border: it records every call and reports it on a
// channel, so tests wait for decisions instead of sleeping.
type recordingBinder struct {
	bound         chan binding
	unschedulable chan unschedulable

	mu      sync.Mutex
	binds   []binding
	unsched []unschedulable
	bindErr error
}

func newBinder() *recordingBinder {
	return &recordingBinder{bound: make(chan binding, 1000), unschedulable: make(chan unschedulable, 1000)}
}

func (b *recordingBinder) Bind(_ context.Context, p *api.Pod, node string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bindErr != nil {
		return b.bindErr
	}
	r := binding{p.Name, node}
	b.binds = append(b.binds, r)
	b.bound <- r
	return nil
}

func (b *recordingBinder) Unschedulable(_ context.Context, p *api.Pod, message string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := unschedulable{p.Name, message}
	b.unsched = append(b.unsched, r)
	b.unschedulable <- r
	return nil
}

func (b *recordingBinder) bindings() []binding {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.binds)
}

func (b *recordingBinder) unschedulables() []unschedulable {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.unsched)
}

// waitFor returns the next value on ch, failing the test if none comes in time; the
// timeout only bounds a broken test, it does not synchronise anything.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// node returns a Ready node with 4 CPUs, 8Gi of memory and room for 110 pods,
// changed by opts.
func node(name string, opts ...func(*api.Node)) *api.Node {
	n := &api.Node{
		ObjectMeta: api.ObjectMeta{Name: name, Labels: map[string]string{api.LabelHostname: name}},
		Status: api.NodeStatus{
			Allocatable: api.ResourceList{
				api.ResourceCPU:    api.MustParseQuantity("4"),
				api.ResourceMemory: api.MustParseQuantity("8Gi"),
				api.ResourcePods:   api.MustParseQuantity("110"),
			},
			Conditions: []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// alloc sets the node's allocatable resources; an empty string leaves one out.
func alloc(cpu, mem, pods string) func(*api.Node) {
	return func(n *api.Node) {
		n.Status.Allocatable = api.ResourceList{}
		for name, v := range map[string]string{api.ResourceCPU: cpu, api.ResourceMemory: mem, api.ResourcePods: pods} {
			if v != "" {
				n.Status.Allocatable[name] = api.MustParseQuantity(v)
			}
		}
	}
}

func notReady(n *api.Node) { n.Status.Conditions[0].Status = api.ConditionFalse }

func cordoned(n *api.Node) { n.Spec.Unschedulable = true }

func taint(key, value, effect string) func(*api.Node) {
	return func(n *api.Node) {
		n.Spec.Taints = append(n.Spec.Taints, api.Taint{Key: key, Value: value, Effect: effect})
	}
}

func label(key, value string) func(*api.Node) {
	return func(n *api.Node) { n.Labels[key] = value }
}

// pod returns a pending pod of one container requesting cpu and mem ("" for none),
// changed by opts.
func pod(name, cpu, mem string, opts ...func(*api.Pod)) *api.Pod {
	req := api.ResourceList{}
	if cpu != "" {
		req[api.ResourceCPU] = api.MustParseQuantity(cpu)
	}
	if mem != "" {
		req[api.ResourceMemory] = api.MustParseQuantity(mem)
	}
	p := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", UID: "uid-" + name},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "busybox",
			Resources: api.Resources{Requests: req}}}},
		Status: api.PodStatus{Phase: api.PodPending},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func selector(kv ...string) func(*api.Pod) {
	return func(p *api.Pod) {
		p.Spec.NodeSelector = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

func tolerate(key, op, value, effect string) func(*api.Pod) {
	return func(p *api.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, api.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
	}
}

func phase(ph string) func(*api.Pod) { return func(p *api.Pod) { p.Status.Phase = ph } }

// fill shows count pods on node n in v, each requesting cpu and mem.
func fill(v *fakeView, n string, count int, cpu, mem string, opts ...func(*api.Pod)) {
	for i := range count {
		v.place(pod(fmt.Sprintf("%s-existing-%d", n, i), cpu, mem, opts...), n)
	}
}
