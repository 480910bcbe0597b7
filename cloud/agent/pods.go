package agent

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

var podKind = api.KindOfType[*api.Pod]()

// podHandler calls h's functions for the pods bound to this node only, and not once
// ctx has ended: the pod informer may be shared, hold every pod, and outlive the
// agent.
func (a *Agent) podHandler(ctx context.Context, h client.TypedHandler[*api.Pod]) client.TypedHandler[*api.Pod] {
	mine := func(p *api.Pod) bool { return ctx.Err() == nil && p.Spec.NodeName == a.cfg.NodeName }
	var out client.TypedHandler[*api.Pod]
	if h.OnAdd != nil {
		out.OnAdd = func(p *api.Pod) {
			if mine(p) {
				h.OnAdd(p)
			}
		}
	}
	if h.OnUpdate != nil {
		out.OnUpdate = func(old, p *api.Pod) {
			if mine(p) {
				h.OnUpdate(old, p)
			}
		}
	}
	if h.OnDelete != nil {
		out.OnDelete = func(p *api.Pod) {
			if mine(p) {
				h.OnDelete(p)
			}
		}
	}
	return out
}

// finishDeletions is what an agent without a Driver does with its pods: none runs, so
// a pod marked for deletion is removed at once.
func (a *Agent) finishDeletions(ctx context.Context) {
	finish := func(p *api.Pod) {
		if p.DeletionTimestamp == nil {
			return
		}
		zero := int64(0)
		if _, err := a.cfg.Client.DeleteWithGrace(ctx, podKind, p.Namespace, p.Name, &zero); err != nil && !client.IsNotFound(err) {
			a.log.Warn("finishing pod deletion failed", zap.String("pod", p.Key()), zap.Error(err))
		}
	}
	a.podInformer.AddHandler(a.podHandler(ctx, client.TypedHandler[*api.Pod]{OnAdd: finish, OnUpdate: func(_, p *api.Pod) { finish(p) }}))
	<-ctx.Done()
}

// podManager runs one podWorker per pod bound to the node. Until adoption is done
// (see adopt.go) it only remembers the pods it hears of. It is safe for concurrent
// use.
type podManager struct {
	a *Agent

	mu      sync.Mutex
	ready   bool
	pods    map[string]*api.Pod // by UID: the newest version of each pod bound here
	workers map[string]*podWorker
	// done holds the UIDs whose worker removed the pod, until the informer says it is
	// gone, so that a late update does not start a worker for it again.
	done map[string]bool
}

func newPodManager(a *Agent) *podManager {
	return &podManager{a: a, pods: map[string]*api.Pod{}, workers: map[string]*podWorker{}, done: map[string]bool{}}
}

// run watches the node's pods and drives them until ctx is cancelled.
func (m *podManager) run(ctx context.Context) {
	inf := m.a.podInformer
	inf.AddHandler(m.a.podHandler(ctx, client.TypedHandler[*api.Pod]{
		OnAdd:    func(p *api.Pod) { m.onPod(ctx, p) },
		OnUpdate: func(_, p *api.Pod) { m.onPod(ctx, p) },
		OnDelete: m.onDelete,
	}))
	select {
	case <-inf.Synced():
	case <-ctx.Done():
		return
	}
	_ = m.adopt(ctx)
	// The local volumes of claims deleted while the agent was down go now, and those
	// of claims deleted later as they go.
	m.a.spawn(func() { m.a.watchClaims(ctx) })
}

func (m *podManager) onPod(ctx context.Context, p *api.Pod) {
	if !validUID(p.UID) {
		m.a.log.Warn("ignoring a pod with an unusable uid", zap.String("pod", p.Key()), zap.String("uid", p.UID))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pods[p.UID] = p
	// Once the agent stops, an update still queued in the informer must not start a
	// worker: that worker would not know the tasks the stopping one left running.
	if !m.ready || m.done[p.UID] || ctx.Err() != nil {
		return
	}
	w := m.workers[p.UID]
	if w == nil {
		w = m.startWorker(ctx, p.UID, p, nil, false)
	}
	w.update(p)
}

func (m *podManager) onDelete(p *api.Pod) {
	m.mu.Lock()
	delete(m.pods, p.UID)
	delete(m.done, p.UID)
	w := m.workers[p.UID]
	m.mu.Unlock()
	if w != nil {
		w.removed()
	}
}

// startWorker starts the worker of uid; p is nil for a pod gone from the API.
// listed says adopted comes from the driver's list taken at adoption. The caller
// holds m.mu.
func (m *podManager) startWorker(ctx context.Context, uid string, p *api.Pod, adopted []*TaskHandle, listed bool) *podWorker {
	w := newPodWorker(m.a, ctx, uid, adopted)
	w.listed = listed
	if p != nil {
		w.update(p)
	} else {
		w.gone = true
	}
	m.workers[uid] = w
	m.a.spawn(w.run)
	return w
}

// finished forgets a worker that returned.
func (m *podManager) finished(w *podWorker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.workers[w.uid] == w {
		delete(m.workers, w.uid)
		if _, bound := m.pods[w.uid]; bound && w.ctx.Err() == nil {
			m.done[w.uid] = true
		}
	}
}

// find returns the worker of the pod namespace/name, preferring one whose pod is not
// being deleted (a new pod may reuse the name of one that is terminating).
func (m *podManager) find(namespace, name string) *podWorker {
	m.mu.Lock()
	ws := make([]*podWorker, 0, len(m.workers))
	for _, w := range m.workers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	var found *podWorker
	for _, w := range ws {
		w.mu.Lock()
		match := w.index.namespace == namespace && w.index.name == name
		alive := !w.gone && w.latest != nil && w.latest.DeletionTimestamp == nil
		w.mu.Unlock()
		if match && (found == nil || alive) {
			found = w
		}
	}
	return found
}
