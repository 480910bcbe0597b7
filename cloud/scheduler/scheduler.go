// Package scheduler places pods on nodes. Like Nomad's scheduler it has narrow inputs:
// a read-only View of the cluster, which the caller keeps up to date from watches, and
// a Binder that writes its decisions. It never holds the store or the API client.
//
// A decision filters the nodes (ready, schedulable, taints tolerated, nodeSelector
// matched, CPU, memory and pod count free) and scores the nodes left with a Strategy:
// spread (the default), binpack or random, Docker Swarm's three. Run drives decisions
// from a channel of pending pods and retries those that fit nowhere.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// View is a read-only view of cluster state, kept up to date by the caller (from
// watches, in the server). The objects it returns are shared, not copies: they must not
// be modified, by the scheduler (which never does) or by anyone else once returned; a
// change arrives as a new object. Implementations must be safe for concurrent use.
type View interface {
	// Nodes returns every registered node, in any order.
	Nodes() []*api.Node
	// PodsOnNode returns the pods bound to the named node (spec.nodeName), terminal
	// ones included; the scheduler skips those itself.
	PodsOnNode(name string) []*api.Pod
}

// Binder writes the scheduler's decisions. Implementations must be safe for concurrent
// use. Errors may wrap an *api.Status: a NotFound or Conflict reason tells the
// scheduler that the pod is gone or no longer needs it, so it stops retrying.
type Binder interface {
	// Bind assigns pod to node (the server posts to the pods/binding subresource).
	Bind(ctx context.Context, pod *api.Pod, node string) error
	// Unschedulable records that pod fits nowhere (the server sets the condition
	// PodScheduled=False, reason Unschedulable, with message, in the pod's status).
	Unschedulable(ctx context.Context, pod *api.Pod, message string) error
}

// DefaultSchedulerName is the spec.schedulerName this scheduler serves; pods that name
// no scheduler are served too.
const DefaultSchedulerName = "default-scheduler"

// Config configures a Scheduler. View and Binder are required; every other field has
// a usable zero value.
type Config struct {
	// View is the scheduler's read-only view of nodes and pods.
	View View
	// Binder writes bindings and unschedulable conditions.
	Binder Binder
	// Strategy scores feasible nodes. The zero value is Spread.
	Strategy Strategy
	// Logger receives decisions and failures, used as given (the caller names it).
	// If nil, nothing is logged.
	Logger *zap.Logger
	// Rand drives the Random strategy. If nil, a generator seeded from the runtime's
	// random source is used. The scheduler serialises its use of Rand.
	Rand *rand.Rand
	// InitialBackoff is how long Run waits before retrying a pod that did not fit the
	// first time; each further failure doubles the wait. If zero, 1s.
	InitialBackoff time.Duration
	// MaxBackoff caps the retry wait. If zero, 30s.
	MaxBackoff time.Duration
	// AssumeTTL is how long a pod this scheduler bound counts against its node while
	// the View does not show it there yet. If zero, 30s.
	AssumeTTL time.Duration
	// ParallelBinds is how many bindings Run keeps in flight at once: decisions are
	// still made one at a time, in order, but a burst of pods need not wait for each
	// binding's round trip (and its store commit) before the next decision; concurrent
	// bindings share the store's group commit. If zero, 1: Run binds each pod before
	// it decides the next.
	ParallelBinds int
}

// Scheduler places pods on nodes. Its methods are safe for concurrent use: decisions
// are serialised so that two of them never take the same free capacity, while binding
// (network I/O) happens outside that lock.
type Scheduler struct {
	view     View
	binder   Binder
	strategy Strategy
	log      *zap.Logger
	now      func() time.Time

	// mu serialises decisions; it guards rand and assumed.
	mu      sync.Mutex
	rand    *rand.Rand
	assumed *assumeCache

	queue        *retryQueue
	nodesChanged chan struct{} // capacity 1: coalesces NodesChanged calls
	// binds holds a token per binding Run has in flight; its capacity is
	// Config.ParallelBinds.
	binds chan struct{}
}

// New returns a Scheduler configured by cfg. It panics if cfg.View or cfg.Binder is
// nil, a programming error.
func New(cfg Config) *Scheduler {
	if cfg.View == nil || cfg.Binder == nil {
		panic("scheduler.New: Config.View and Config.Binder are required")
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	r := cfg.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	initial := orDefault(cfg.InitialBackoff, time.Second)
	maxBackoff := max(orDefault(cfg.MaxBackoff, 30*time.Second), initial)
	s := &Scheduler{
		view:         cfg.View,
		binder:       cfg.Binder,
		strategy:     cfg.Strategy,
		log:          log,
		now:          time.Now,
		rand:         r,
		assumed:      newAssumeCache(orDefault(cfg.AssumeTTL, 30*time.Second)),
		nodesChanged: make(chan struct{}, 1),
		binds:        make(chan struct{}, max(cfg.ParallelBinds, 1)),
	}
	s.queue = newRetryQueue(initial, maxBackoff, func() time.Time { return s.now() })
	return s
}

// orDefault returns d, or def if d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Schedule picks a node for pod without binding it or reserving capacity. When no node
// fits, the error is a *FitError saying why each node was rejected.
func (s *Scheduler) Schedule(pod *api.Pod) (node string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scheduleLocked(pod, requestOf(pod))
}

// ScheduleOne decides where pod goes and writes the decision: Bind on success, or
// Unschedulable with the FitError's message, whose *FitError it then returns. Pods that
// are bound already, terminal, being deleted, served by another scheduler, or that
// this scheduler bound and the View does not show yet, are skipped with a nil error.
func (s *Scheduler) ScheduleOne(ctx context.Context, pod *api.Pod) error {
	node, err := s.decide(ctx, pod)
	if err != nil || node == "" {
		return err
	}
	return s.bind(ctx, pod, node)
}

// decide is ScheduleOne up to the binding: it returns the node pod is to be bound to,
// its capacity reserved there, or "" for a pod that is skipped or fits nowhere (the
// error is then the *FitError, after Unschedulable recorded it).
func (s *Scheduler) decide(ctx context.Context, pod *api.Pod) (string, error) {
	if !s.responsibleFor(pod) {
		return "", nil
	}
	key := podKey(pod)
	req := requestOf(pod)
	s.mu.Lock()
	if s.assumed.has(key) {
		s.mu.Unlock()
		return "", nil
	}
	node, err := s.scheduleLocked(pod, req)
	if err == nil {
		// Reserve under the lock and bind after releasing it: a concurrent decision
		// cannot take this capacity while the binding is in flight.
		s.assumed.add(key, node, req, s.now())
	}
	s.mu.Unlock()

	if err != nil {
		var fe *FitError
		if !errors.As(err, &fe) {
			return "", err
		}
		if hasUnschedulableCondition(pod, fe.Error()) {
			return "", fe
		}
		if uerr := s.binder.Unschedulable(ctx, pod, fe.Error()); uerr != nil {
			return "", errors.Join(fe, fmt.Errorf("pod %s/%s: recording unschedulable: %w", pod.Namespace, pod.Name, uerr))
		}
		return "", fe
	}
	return node, nil
}

// bind writes a decision of decide, and gives the reserved capacity back if the
// write fails.
func (s *Scheduler) bind(ctx context.Context, pod *api.Pod, node string) error {
	if err := s.binder.Bind(ctx, pod, node); err != nil {
		s.unassume(podKey(pod))
		return fmt.Errorf("pod %s/%s: bind to node %s: %w", pod.Namespace, pod.Name, node, err)
	}
	s.log.Debug("pod bound", zap.String("namespace", pod.Namespace), zap.String("pod", pod.Name),
		zap.String("node", node), zap.Stringer("strategy", s.strategy))
	return nil
}

// unassume gives back the capacity reserved for the pod with key.
func (s *Scheduler) unassume(key string) {
	s.mu.Lock()
	s.assumed.remove(key)
	s.mu.Unlock()
}

// NodesChanged tells the scheduler that a node was added or removed or that its
// readiness, schedulability, taints, labels or capacity may have changed. Run then
// retries the pods waiting for room, if the nodes' schedulable state did change; calls
// are cheap, coalesce, and never block, so the caller may make one per node event.
func (s *Scheduler) NodesChanged() {
	select {
	case s.nodesChanged <- struct{}{}:
	default:
	}
}

// PodDeleted tells the scheduler that pod was deleted: Run stops retrying it, and if it
// was bound, Run retries the pods waiting for the room it leaves. It never blocks.
func (s *Scheduler) PodDeleted(pod *api.Pod) {
	key := podKey(pod)
	s.unassume(key)
	s.queue.deleted(key)
	if pod.Spec.NodeName != "" {
		s.queue.retryAll()
	}
}

// responsibleFor reports whether pod is this scheduler's to place now.
func (s *Scheduler) responsibleFor(pod *api.Pod) bool {
	switch {
	case pod.Spec.NodeName != "", pod.IsTerminal(), pod.DeletionTimestamp != nil:
		return false
	case pod.Spec.SchedulerName != "" && pod.Spec.SchedulerName != DefaultSchedulerName:
		return false
	}
	return true
}

// hasUnschedulableCondition reports whether pod already says it is unschedulable for
// message, so that retries that fail the same way do not write again.
func hasUnschedulableCondition(pod *api.Pod, message string) bool {
	c := pod.Status.Condition(api.PodScheduled)
	return c != nil && c.Status == api.ConditionFalse && c.Reason == api.ReasonUnschedulable && c.Message == message
}

// podKey identifies a pod across versions: its UID, or namespace/name for an object
// that was never stored.
func podKey(p *api.Pod) string {
	if p.UID != "" {
		return p.UID
	}
	return p.Namespace + "/" + p.Name
}

// scheduleLocked filters and scores every node; s.mu must be held.
func (s *Scheduler) scheduleLocked(pod *api.Pod, req podRequest) (string, error) {
	s.assumed.expire(s.now())
	nodes := s.view.Nodes()
	feasible := make([]nodeInfo, 0, len(nodes))
	var reasons map[string]int
	for _, n := range nodes {
		info, why := s.filter(pod, req, n)
		if len(why) == 0 {
			feasible = append(feasible, info)
			continue
		}
		if reasons == nil {
			reasons = make(map[string]int)
		}
		for _, r := range why {
			reasons[r]++
		}
	}
	if len(feasible) == 0 {
		return "", &FitError{Pod: pod.Namespace + "/" + pod.Name, NumNodes: len(nodes), Reasons: reasons}
	}
	return s.pick(feasible), nil
}
