package agent

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// orphanGrace is what the tasks of a pod that is gone from the API get to stop: it
// was force-deleted (grace 0), or deleted while the agent was down; the kubelet gives
// such pods its minimum grace period too.
const orphanGrace = 2 * time.Second

// terminate ends the pod: each running task gets its preStop hook and then Stop with
// what remains of the deletion's grace period (in parallel, as the kubelet kills
// containers), then every task of the pod is destroyed, the sandbox released, the
// record and volumes removed, and finally the pod deleted from the API with grace 0.
// If the agent stops half way, the next agent starts over: the tasks and the record
// are removed before the pod, and the pod is deleted last.
func (w *podWorker) terminate() {
	ctx, d := w.ctx, w.driver
	w.mu.Lock()
	gone := w.gone
	w.mu.Unlock()
	p := w.pod
	grace, preStop := orphanGrace, false
	if !gone && p != nil {
		grace, preStop = w.remainingGrace(), true
	}
	w.log.Info("terminating pod", zap.Bool("gone_from_api", gone), zap.Duration("grace", grace))

	var wg sync.WaitGroup
	stopped := map[string]bool{}
	for _, c := range w.ctrs {
		if c.stopProbes != nil {
			c.stopProbes()
			c.stopProbes = nil
		}
		if !c.running || c.rec.Current == nil {
			continue
		}
		spec, id, hook := w.spec(c.name), c.rec.Current.ID, preStop && !c.killing
		if !c.killing {
			w.event(api.EventNormal, "Killing", "Stopping container %s", c.name)
		}
		stopped[id] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.stopTask(ctx, p, spec, id, grace, hook)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	// Every task of the pod goes: the recorded attempts, and whatever else the driver
	// holds for this UID (a task started just before the agent crashed, before its
	// handle was saved).
	ids := map[string]bool{}
	for _, cr := range w.rec.Containers {
		for _, h := range []*TaskHandle{cr.Current, cr.Previous} {
			if h != nil {
				ids[h.ID] = true
			}
		}
	}
	if tasks, err := d.Tasks(ctx); err == nil {
		for _, h := range tasks {
			if h.PodUID == w.uid {
				ids[h.ID] = true
			}
		}
	} else {
		w.log.Warn("listing the driver's tasks failed", zap.Error(err))
	}
	for id := range ids {
		if !stopped[id] {
			if st, err := d.Inspect(ctx, id); err == nil && st.State != TaskExited {
				w.stopTask(ctx, p, nil, id, min(grace, orphanGrace), false)
			}
		}
		w.destroyTask(id)
	}
	if err := d.ReleaseSandbox(ctx, w.uid); err != nil && ctx.Err() == nil {
		w.log.Warn("releasing the pod's sandbox failed", zap.Error(err))
	}
	if err := w.a.removePodDir(w.uid); err != nil {
		w.log.Warn("removing the pod's state failed", zap.Error(err))
	}
	w.rec.Containers = map[string]*containerRecord{}
	w.publishIndex()
	if gone || p == nil {
		w.log.Info("pod cleaned up")
		return
	}
	w.deleteFromAPI()
}

// remainingGrace is what is left of the deletion's grace period: from the deletion
// timestamp plus deletionGracePeriodSeconds to now, never more than that period (the
// master's clock may be ahead of ours) nor less than zero.
func (w *podWorker) remainingGrace() time.Duration {
	p := w.pod
	grace := podGrace(p)
	if p.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*p.DeletionGracePeriodSeconds) * time.Second
	}
	if p.DeletionTimestamp == nil {
		return grace
	}
	left := p.DeletionTimestamp.Add(grace).Sub(w.a.cfg.Clock.Now())
	return min(max(left, 0), grace)
}

// deleteFromAPI removes the pod with grace 0 now that nothing of it runs, retrying
// while the API is unreachable. The UID is checked first, so that a new pod of the
// same name is not deleted in its place.
func (w *podWorker) deleteFromAPI() {
	ctx, c := w.ctx, w.a.cfg.Client
	p := w.pod
	zero := int64(0)
	delay := 200 * time.Millisecond
	for ctx.Err() == nil {
		o, err := c.Get(ctx, podKind, p.Namespace, p.Name)
		if err == nil && o.GetObjectMeta().UID != w.uid {
			w.log.Info("pod removed; a new pod has its name")
			return
		}
		if err == nil {
			_, err = c.DeleteWithGrace(ctx, podKind, p.Namespace, p.Name, &zero)
		}
		if err == nil || client.IsNotFound(err) {
			w.log.Info("pod removed")
			return
		}
		w.log.Warn("deleting the pod from the API failed; retrying", zap.Error(err), zap.Duration("in", delay))
		clock.Sleep(w.a.cfg.Clock, delay, ctx.Done())
		delay = min(2*delay, 10*time.Second)
	}
}
