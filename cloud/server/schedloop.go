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

// parallelBinds is how many bindings the scheduler keeps in flight: a burst of pods
// is bound at the store's group-commit rate rather than one commit per pod. Under a
// burst a binding waits a few hundred milliseconds for the API (the cores are busy
// starting containers), so a hundred pods went to the node over 2 s with 16 in flight
// and over 1.2-1.8 s with 64.
const parallelBinds = 64

// schedulerLoop feeds the scheduler from informers: its View reads their caches, its
// Binder writes through the API (and records the Scheduled and FailedScheduling
// events), and pending pods arrive from the pod informer.
type schedulerLoop struct {
	sched    *scheduler.Scheduler
	recorder *events.Recorder
	pending  chan *api.Pod
}

func newSchedulerLoop(cl *client.Client, f *client.Factory, strategy string, log *zap.Logger) (*schedulerLoop, error) {
	strat, err := scheduler.ParseStrategy(strategy)
	if err != nil {
		return nil, err
	}
	rec := events.NewRecorder(cl, "default-scheduler")
	rec.Logger = log
	l := &schedulerLoop{recorder: rec, pending: make(chan *api.Pod, 1024)}
	nodes, pods := client.For[*api.Node](f), client.For[*api.Pod](f)
	view := informerView{nodes: nodes, pods: pods}
	l.sched = scheduler.New(scheduler.Config{View: view, Binder: apiBinder{cl: cl, rec: rec}, Strategy: strat, Logger: log,
		ParallelBinds: parallelBinds})
	enqueue := func(p *api.Pod) {
		if p.Spec.NodeName == "" && !p.IsTerminal() && p.DeletionTimestamp == nil {
			l.pending <- p
		}
	}
	pods.AddHandler(client.TypedHandler[*api.Pod]{
		OnAdd:    enqueue,
		OnUpdate: func(_, p *api.Pod) { enqueue(p) },
		OnDelete: l.sched.PodDeleted,
	})
	nodesChanged := func(*api.Node) { l.sched.NodesChanged() }
	nodes.AddHandler(client.TypedHandler[*api.Node]{
		OnAdd:    nodesChanged,
		OnUpdate: func(_, n *api.Node) { nodesChanged(n) },
		OnDelete: nodesChanged,
	})
	return l, nil
}

// Run schedules until ctx ends, and returns once the recorder has stopped too.
func (l *schedulerLoop) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); l.recorder.Run(ctx) }()
	l.sched.Run(ctx, l.pending)
}

// informerView is the scheduler's read-only view on the shared informers: nodes,
// and the pods of a node from the pod informer's node index, so a decision reads
// only the pods of the nodes it considers.
type informerView struct {
	nodes client.Typed[*api.Node]
	pods  client.Typed[*api.Pod]
}

func (v informerView) Nodes() []*api.Node { return v.nodes.List() }

func (v informerView) PodsOnNode(name string) []*api.Pod { return v.pods.OnNode(name) }

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
	next := api.DeepCopyOf(pod)
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
