package server

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/cloud/events"
	"github.com/cloudbox/cloudbox/cloud/scheduler"
)

// schedulerLoop feeds the scheduler from informers: its View reads their caches, its
// Binder writes through the API (and records the Scheduled and FailedScheduling
// events), and pending pods arrive from the pod informer.
type schedulerLoop struct {
	sched    *scheduler.Scheduler
	recorder *events.Recorder
	pending  chan *api.Pod
}

func newSchedulerLoop(cl *client.Client, nodes, pods *client.Informer, strategy string, log *zap.Logger) (*schedulerLoop, error) {
	strat, err := scheduler.ParseStrategy(strategy)
	if err != nil {
		return nil, err
	}
	rec := events.NewRecorder(cl, "default-scheduler")
	rec.Logger = log
	l := &schedulerLoop{recorder: rec, pending: make(chan *api.Pod, 1024)}
	view := &informerView{nodes: nodes, podsByNode: map[string]map[string]*api.Pod{}}
	l.sched = scheduler.New(scheduler.Config{View: view, Binder: apiBinder{cl: cl, rec: rec}, Strategy: strat, Logger: log})
	enqueue := func(o api.Object) {
		p := o.(*api.Pod)
		if p.Spec.NodeName == "" && !p.IsTerminal() && p.DeletionTimestamp == nil {
			l.pending <- p
		}
	}
	pods.AddHandler(client.Handler{
		OnAdd: func(o api.Object) { view.setPod(nil, o.(*api.Pod)); enqueue(o) },
		OnUpdate: func(old, o api.Object) {
			view.setPod(old.(*api.Pod), o.(*api.Pod))
			enqueue(o)
		},
		OnDelete: func(o api.Object) {
			view.setPod(o.(*api.Pod), nil)
			l.sched.PodDeleted(o.(*api.Pod))
		},
	})
	nodesChanged := func(api.Object) { l.sched.NodesChanged() }
	nodes.AddHandler(client.Handler{
		OnAdd:    nodesChanged,
		OnUpdate: func(_, o api.Object) { l.sched.NodesChanged() },
		OnDelete: nodesChanged,
	})
	return l, nil
}

func (l *schedulerLoop) Run(ctx context.Context) {
	go l.recorder.Run(ctx)
	l.sched.Run(ctx, l.pending)
}

// informerView is the scheduler's read-only view: nodes from their informer, and
// pods indexed by node from the pod informer's events, so a decision reads only the
// pods of the nodes it considers.
type informerView struct {
	nodes      *client.Informer
	mu         sync.RWMutex
	podsByNode map[string]map[string]*api.Pod
}

// setPod moves a pod in the index from its old node to its new one; either may be
// nil.
func (v *informerView) setPod(old, cur *api.Pod) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if old != nil && old.Spec.NodeName != "" {
		delete(v.podsByNode[old.Spec.NodeName], old.Key())
	}
	if cur != nil && cur.Spec.NodeName != "" {
		m := v.podsByNode[cur.Spec.NodeName]
		if m == nil {
			m = map[string]*api.Pod{}
			v.podsByNode[cur.Spec.NodeName] = m
		}
		m[cur.Key()] = cur
	}
}

func (v *informerView) Nodes() []*api.Node {
	objs := v.nodes.List()
	out := make([]*api.Node, len(objs))
	for i, o := range objs {
		out[i] = o.(*api.Node)
	}
	return out
}

func (v *informerView) PodsOnNode(name string) []*api.Pod {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]*api.Pod, 0, len(v.podsByNode[name]))
	for _, p := range v.podsByNode[name] {
		out = append(out, p)
	}
	return out
}

// apiBinder writes the scheduler's decisions through the API, and tells of them in
// events as Kubernetes's scheduler does. The scheduler calls Unschedulable only
// when the reason changed, so FailedScheduling is not repeated on every retry.
type apiBinder struct {
	cl  *client.Client
	rec *events.Recorder // nil records nothing
}

func (b apiBinder) Bind(ctx context.Context, pod *api.Pod, node string) error {
	if err := b.cl.Bind(ctx, pod.Namespace, pod.Name, node); err != nil {
		return err
	}
	b.rec.Event(pod, api.EventNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
	return nil
}

func (b apiBinder) Unschedulable(ctx context.Context, pod *api.Pod, message string) error {
	b.rec.Event(pod, api.EventWarning, "FailedScheduling", "%s", message)
	next := api.DeepCopy(pod).(*api.Pod)
	changed := next.Status.SetCondition(api.PodCondition{Type: api.PodScheduled, Status: api.ConditionFalse,
		Reason: api.ReasonUnschedulable, Message: message})
	if !changed {
		return nil
	}
	_, err := b.cl.UpdateStatus(ctx, next)
	if client.IsConflict(err) || client.IsNotFound(err) {
		return nil // a newer version of the pod is on its way to the queue
	}
	return err
}
