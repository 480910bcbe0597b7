package scheduler

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Run places the pods that arrive on pending, one at a time, until ctx is cancelled.
// A pod that fits nowhere, or whose binding fails, is retried after a backoff (doubling
// from Config.InitialBackoff to Config.MaxBackoff), at once when NodesChanged reports a
// change to the nodes' schedulable state, and when PodDeleted frees room. A newer copy
// of a queued pod arriving on pending replaces it and is tried at once. Run keeps
// serving retries if pending is closed. Only one Run may be active at a time.
func (s *Scheduler) Run(ctx context.Context, pending <-chan *api.Pod) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Pods handed out but not attempted when ctx ends stay queued for the next Run.
	defer s.queue.release()
	// nodesSeen is the fingerprint of the nodes when last compared, valid only if
	// nodesKnown: while no pod waits, a node change costs nothing but forgetting it.
	var nodesSeen uint64
	nodesKnown := false
	for {
		for _, p := range s.queue.due() {
			if ctx.Err() != nil {
				return
			}
			s.attempt(ctx, p)
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
			s.attempt(ctx, p)
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

// attempt runs ScheduleOne for pod and queues it again if it should be retried.
func (s *Scheduler) attempt(ctx context.Context, pod *api.Pod) {
	key := podKey(pod)
	if s.queue.isGone(key) {
		return
	}
	err := s.ScheduleOne(ctx, pod)
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
