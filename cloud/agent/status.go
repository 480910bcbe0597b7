package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// publish computes the pod's status and hands it to the writer if it changed. A pod
// that reaches Succeeded or Failed is terminal from then on.
func (w *podWorker) publish() {
	w.publishIndex()
	if w.frozen || w.pod == nil {
		return
	}
	st := w.buildStatus()
	if st.Phase == api.PodSucceeded || st.Phase == api.PodFailed {
		if !w.terminal {
			w.log.Info("pod finished", zap.String("phase", st.Phase))
		}
		w.terminal = true
	}
	if w.status != nil && sameStatus(w.status, &st) {
		return
	}
	w.status = &st
	w.writer.set(st)
}

// sameStatus compares two statuses as they would be written.
func sameStatus(a, b *api.PodStatus) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// buildStatus is the pod's status from the worker's state, the kubelet's way.
func (w *podWorker) buildStatus() api.PodStatus {
	p := w.pod
	var prev api.PodStatus
	if w.status != nil {
		prev = *w.status
	}
	now := api.NewTime(w.a.cfg.Clock.Now())
	st := api.PodStatus{HostIP: w.a.hostIP(), PodIP: w.a.podIP(p), StartTime: prev.StartTime}
	if st.StartTime == nil {
		st.StartTime = now
	}
	st.Conditions = append([]api.PodCondition(nil), prev.Conditions...)

	var notInitialized, notReady []string
	initialized := true
	for i := range p.Spec.InitContainers {
		spec := &p.Spec.InitContainers[i]
		c := w.ctrs[spec.Name]
		cs := w.containerStatus(c, spec, reasonPodInitializing)
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		if !c.rec.succeeded() || c.running {
			initialized = false
			notInitialized = append(notInitialized, spec.Name)
		}
	}
	for i := range p.Spec.Containers {
		spec := &p.Spec.Containers[i]
		c := w.ctrs[spec.Name]
		waitReason := reasonContainerCreating
		if !initialized {
			waitReason = reasonPodInitializing
		}
		cs := w.containerStatus(c, spec, waitReason)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			notReady = append(notReady, spec.Name)
		}
	}
	st.Phase = podPhase(p.Spec.RestartPolicy, st.InitContainerStatuses, st.ContainerStatuses)
	if w.volErr != "" {
		st.Reason, st.Message = "FailedMount", w.volErr
	}

	cond := func(t string, ok bool, reason, msg string) {
		c := api.PodCondition{Type: t, Status: api.ConditionTrue, LastTransitionTime: now}
		if !ok {
			c.Status, c.Reason, c.Message = api.ConditionFalse, reason, msg
		}
		st.SetCondition(c)
	}
	cond(api.PodInitialized, initialized, "ContainersNotInitialized",
		fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(notInitialized, " ")))
	ready, reason, msg := len(notReady) == 0, "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
	if st.Phase == api.PodSucceeded || st.Phase == api.PodFailed {
		ready, reason, msg = false, "PodCompleted", ""
	}
	cond(api.ContainersReady, ready, reason, msg)
	cond(api.PodReady, ready, reason, msg)
	return st
}

// containerStatus is one container's status. waitReason is why a container that has
// not run yet waits, when nothing more precise is known.
func (w *podWorker) containerStatus(c *container, spec *api.Container, waitReason string) api.ContainerStatus {
	r := c.rec
	cs := api.ContainerStatus{Name: spec.Name, Image: spec.Image, ImageID: r.ImageID, RestartCount: r.RestartCount}
	if r.Current != nil {
		cs.ContainerID = containerID(r.Current.ID)
	}
	switch {
	case c.running:
		cs.State.Running = &api.ContainerStateRunning{StartedAt: api.NewTime(r.Current.StartedAt)}
		// Not ready before the startup probe passed, as with the kubelet.
		cs.Ready = c.ready && c.started && !c.killing
		if r.LastTermination != nil {
			cs.LastTerminationState.Terminated = r.LastTermination
		}
	case r.Terminated != nil && c.waiting == nil:
		cs.State.Terminated = r.Terminated
		// A completed init container counts as ready, as in Kubernetes.
		cs.Ready = c.init && r.Terminated.ExitCode == 0
		if r.LastTermination != nil {
			cs.LastTerminationState.Terminated = r.LastTermination
		}
	case r.Terminated != nil:
		cs.State.Waiting = c.waiting
		cs.LastTerminationState.Terminated = r.Terminated
	default:
		cs.State.Waiting = c.waiting
		if cs.State.Waiting == nil {
			cs.State.Waiting = &api.ContainerStateWaiting{Reason: waitReason}
		}
		if r.LastTermination != nil {
			cs.LastTerminationState.Terminated = r.LastTermination
		}
	}
	if cs.Image == "" {
		cs.Image = r.Image
	}
	if !c.init {
		started := c.running && c.started
		cs.Started = &started
	}
	return cs
}

// podPhase is the kubelet's getPhase: Pending until every init container succeeded
// and every container started; Failed when an init container failed under restart
// policy Never; Running while one container runs (or, under Always, all restart);
// Succeeded or Failed once all containers ended for good.
func podPhase(policy string, inits, ctrs []api.ContainerStatus) string {
	pendingInit, failedInit := 0, 0
	for _, cs := range inits {
		switch {
		case cs.State.Running != nil:
			pendingInit++
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case cs.State.Waiting != nil:
			if t := cs.LastTerminationState.Terminated; t != nil {
				if t.ExitCode != 0 {
					failedInit++
				}
			} else {
				pendingInit++
			}
		default:
			pendingInit++
		}
	}
	var running, waiting, stopped, succeeded int
	for _, cs := range ctrs {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	if failedInit > 0 && policy == api.RestartNever {
		return api.PodFailed
	}
	switch {
	case pendingInit > 0, waiting > 0:
		return api.PodPending
	case running > 0:
		return api.PodRunning
	case stopped > 0:
		switch {
		case policy == api.RestartAlways:
			return api.PodRunning
		case stopped == succeeded:
			return api.PodSucceeded
		case policy == api.RestartNever:
			return api.PodFailed
		}
		return api.PodRunning
	}
	return api.PodPending
}

// statusWriter writes one pod's status through the status subresource, coalescing:
// at most one write is in flight, and a status that arrives meanwhile replaces any
// other that waits, so a busy pod costs one request per round trip at most.
type statusWriter struct {
	w       *podWorker
	kick    chan struct{}
	mu      sync.Mutex
	pending *api.PodStatus
	// last is the newest pod the API answered with.
	last *api.Pod
}

func newStatusWriter(w *podWorker) *statusWriter {
	return &statusWriter{w: w, kick: make(chan struct{}, 1)}
}

// set queues a copy of st for writing, replacing a status not yet written.
func (s *statusWriter) set(st api.PodStatus) {
	cp := api.DeepCopyOf(&api.Pod{Status: st}).Status
	s.mu.Lock()
	s.pending = &cp
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *statusWriter) take() *api.PodStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.pending
	s.pending = nil
	return st
}

func (s *statusWriter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		for st := s.take(); st != nil && ctx.Err() == nil; st = s.take() {
			if !s.write(ctx, st) {
				// Keep it unless a newer one came, and try again after a pause.
				s.mu.Lock()
				if s.pending == nil {
					s.pending = st
				}
				s.mu.Unlock()
				if !clock.Sleep(s.w.a.cfg.Clock, time.Second, ctx.Done()) {
					return
				}
			}
		}
	}
}

// write puts st on the pod; it reports false when it should be tried again. The
// write carries the resourceVersion of the newest pod known, and a conflict reads the
// pod again (and gives up if it is another pod of the same name).
func (s *statusWriter) write(ctx context.Context, st *api.PodStatus) bool {
	w, c := s.w, s.w.a.cfg.Client
	base := newer(w.latestPod(), s.last)
	if base == nil {
		return true
	}
	for range 5 {
		obj := api.DeepCopyOf(base)
		obj.Status = *st
		out, err := client.UpdateStatus(ctx, c, obj)
		switch {
		case err == nil:
			s.last = out
			return true
		case client.IsNotFound(err):
			return true
		case client.IsConflict(err):
			cur, gerr := client.Get[*api.Pod](ctx, c, base.Namespace, base.Name)
			if client.IsNotFound(gerr) {
				return true
			}
			if gerr != nil {
				err = gerr
				break
			}
			if cur.UID != w.uid {
				return true
			}
			base = cur
			s.last = base
			continue
		}
		if ctx.Err() == nil {
			w.log.Warn("writing pod status failed", zap.Error(err))
		}
		return false
	}
	return false
}

// newer returns whichever of two versions of a pod has the higher resourceVersion.
func newer(a, b *api.Pod) *api.Pod {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	ra, _ := strconv.ParseUint(a.ResourceVersion, 10, 64)
	rb, _ := strconv.ParseUint(b.ResourceVersion, 10, 64)
	if rb > ra {
		return b
	}
	return a
}
