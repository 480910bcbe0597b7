package scheduler

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Run places the pods that arrive on pending until ctx is cancelled. Decisions are
// made one at a time, in order; each is bound before the next is made or, with
// Config.ParallelBinds above 1, up to that many bindings are in flight at once. A pod
// that fits nowhere, or whose binding fails, is retried after a backoff (doubling from
// Config.InitialBackoff to Config.MaxBackoff), at once when NodesChanged reports a
// change to the nodes' schedulable state, and when PodDeleted frees room. A newer copy
// of a queued pod arriving on pending replaces it and is tried at once. Run keeps
// serving retries if pending is closed, and returns once every binding in flight has
// ended. Only one Run may be active at a time.
func (s *Scheduler) Run(ctx context.Context, pending <-chan *api.Pod) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Pods handed out but not attempted when ctx ends stay queued for the next Run.
	defer s.queue.release()
	var binding sync.WaitGroup
	defer binding.Wait()
	// nodesSeen is the fingerprint of the nodes when last compared, valid only if
	// nodesKnown: while no pod waits, a node change costs nothing but forgetting it.
	var nodesSeen uint64
	nodesKnown := false
	for {
		for _, p := range s.queue.due() {
			if ctx.Err() != nil {
				return
			}
			s.attempt(ctx, p, &binding)
		}
		if d, ok := s.queue.next(); ok {
			timer.Reset(d)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case p, ok := <-pending:
			if !ok {
				pending = nil
				continue
			}
			s.attempt(ctx, p, &binding)
		case <-s.nodesChanged:
			// The server reports every node update, heartbeats included; retry only
			// when something a decision looks at has changed.
			if s.queue.len() == 0 {
				nodesKnown = false
				continue
			}
			if fp := nodesFingerprint(s.view.Nodes()); !nodesKnown || fp != nodesSeen {
				nodesSeen, nodesKnown = fp, true
				s.queue.retryAll()
			}
		case <-s.queue.wake:
		case <-timer.C:
		}
	}
}

// attempt decides where pod goes and binds it, in line or, when Run may keep several
// bindings in flight, on a goroutine of its own that binding tracks; the pod is queued
// again if it should be retried.
func (s *Scheduler) attempt(ctx context.Context, pod *api.Pod, binding *sync.WaitGroup) {
	if s.queue.isGone(podKey(pod)) {
		return
	}
	node, err := s.decide(ctx, pod)
	if err != nil || node == "" {
		s.settle(ctx, pod, err)
		return
	}
	if cap(s.binds) == 1 {
		s.settle(ctx, pod, s.bind(ctx, pod, node))
		return
	}
	select {
	case s.binds <- struct{}{}:
	case <-ctx.Done():
		s.unassume(podKey(pod))
		s.settle(ctx, pod, ctx.Err())
		return
	}
	binding.Add(1)
	go func() {
		defer binding.Done()
		err := s.bind(ctx, pod, node)
		<-s.binds
		s.settle(ctx, pod, err)
		// A failed binding may be due before the time Run's timer was set for.
		s.queue.poke()
	}()
}

// settle records how an attempt at pod ended: placed or no longer in need of it, or
// to be retried after a backoff.
func (s *Scheduler) settle(ctx context.Context, pod *api.Pod, err error) {
	key := podKey(pod)
	log := s.log.With(zap.String("namespace", pod.Namespace), zap.String("pod", pod.Name))
	switch {
	case err == nil:
		s.queue.forget(key)
	case isFinal(err):
		log.Info("pod no longer needs scheduling", zap.Error(err))
		s.queue.forget(key)
	default:
		d, queued := s.queue.failed(pod)
		if !queued || ctx.Err() != nil {
			return // deleted, or Run is stopping and the failure is its own doing
		}
		// A bare FitError is the expected outcome; anything else (a failed write,
		// even one joined to a FitError) is worth a warning.
		if fe, ok := err.(*FitError); ok {
			log.Debug("pod unschedulable", zap.String("reason", fe.Error()), zap.Duration("retry", d))
		} else {
			log.Warn("scheduling pod failed", zap.Error(err), zap.Duration("retry", d))
		}
	}
}

// isFinal reports whether err says that the pod is gone or was placed by someone else
// (an API NotFound or Conflict), so retrying cannot help; a newer copy of the pod
// arrives on pending if it still needs placing.
func isFinal(err error) bool {
	var st *api.Status
	return errors.As(err, &st) && (st.Reason == "NotFound" || st.Reason == "Conflict")
}

// nodesFingerprint hashes what filtering and scoring read of the nodes, in an order
// that does not matter, leaving out what changes on every heartbeat.
func nodesFingerprint(nodes []*api.Node) uint64 {
	var sum uint64
	h := fnv.New64a()
	for _, n := range nodes {
		h.Reset()
		write := func(s string) {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		write(n.Name)
		write(strconv.FormatBool(n.IsReady()))
		write(strconv.FormatBool(n.Spec.Unschedulable))
		for _, t := range n.Spec.Taints {
			write(t.Key + "=" + t.Value + ":" + t.Effect)
		}
		keys := make([]string, 0, len(n.Labels))
		for k := range n.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			write(k + "=" + n.Labels[k])
		}
		for _, r := range []string{api.ResourceCPU, api.ResourceMemory, api.ResourcePods} {
			m, ok := allocatable(n, r)
			write(strconv.FormatBool(ok) + strconv.FormatInt(m, 10))
		}
		sum += h.Sum64()
	}
	return sum
}
