package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// Restart safety. Before any worker acts, the manager lists the driver's tasks and
// the records in the state directory, and gives each pod UID found anywhere (API,
// driver, records) one worker. A worker first reconciles its record with the
// driver's tasks (load): a running task is recovered and supervised again, never
// started twice; one that ended while the agent was down is reported as terminated
// and the restart policy applies to it; one the driver no longer knows is reported
// terminated with reason ContainerStatusUnknown. A worker whose pod is gone from the
// API (deleted while the agent was down) then stops and destroys its tasks.

// adopt starts one worker per pod UID known to the API, the driver or the state
// directory. It runs once, after the informer's first list.
func (m *podManager) adopt(ctx context.Context) error {
	var tasks []*TaskHandle
	delay := 200 * time.Millisecond
	for {
		var err error
		if tasks, err = m.a.allTasks(ctx); err == nil {
			break
		}
		m.a.log.Warn("listing the driver's tasks failed; retrying", zap.Error(err), zap.Duration("in", delay))
		if !clock.Sleep(m.a.cfg.Clock, delay, ctx.Done()) {
			return ctx.Err()
		}
		delay = min(2*delay, 10*time.Second)
	}
	byUID := map[string][]*TaskHandle{}
	for _, h := range tasks {
		if m.a.driverNamed(h.Driver) == nil || !validUID(h.PodUID) {
			continue
		}
		byUID[h.PodUID] = append(byUID[h.PodUID], h)
	}
	recorded, err := m.a.recordedPods()
	if err != nil {
		m.a.log.Warn("reading the state directory failed", zap.Error(err))
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	uids := map[string]bool{}
	for uid := range m.pods {
		uids[uid] = true
	}
	for uid := range byUID {
		uids[uid] = true
	}
	for _, uid := range recorded {
		uids[uid] = true
	}
	for uid := range uids {
		if _, ok := m.pods[uid]; !ok {
			m.a.log.Info("found tasks or state of a pod that is no longer bound here; removing them", zap.String("pod_uid", uid), zap.Int("tasks", len(byUID[uid])))
		}
		m.startWorker(ctx, uid, m.pods[uid], byUID[uid], true)
	}
	m.ready = true
	m.a.log.Info("pod sync started", zap.Int("pods", len(m.pods)), zap.Int("tasks", len(tasks)))
	return nil
}

// load builds the worker's state from its record, the driver's tasks and the pod's
// status; see the package's restart-safety notes above.
func (w *podWorker) load() {
	rec, err := w.a.loadRecord(w.uid)
	if err != nil {
		w.log.Warn("the pod's record is unreadable; going by the driver's tasks", zap.Error(err))
	}
	if rec != nil && !w.listed {
		// A worker started after adoption for a pod the agent has a record of (it
		// should not happen, but a wrong guess here would start a duplicate): ask the
		// drivers rather than take the record's tasks for lost.
		if tasks, err := w.a.allTasks(w.ctx); err == nil {
			for _, h := range tasks {
				if h.PodUID == w.uid {
					w.adopted = append(w.adopted, h)
				}
			}
		}
	}
	p := w.latestPod()
	d := w.a.podDriver(p, rec, w.adopted)
	w.driver = d
	// A pod new to this node has no record and no tasks: there is nothing to write
	// until its first task starts (start saves the record then).
	fresh := rec == nil && len(w.adopted) == 0
	if rec == nil {
		rec = &podRecord{UID: w.uid, Containers: map[string]*containerRecord{}}
	}
	w.pod = p
	if p != nil {
		rec.Namespace, rec.Name, rec.Runtime = p.Namespace, p.Name, p.Spec.RuntimeClassName
	}
	w.rec = rec

	known := map[string]bool{}
	var strays []*TaskHandle
	for _, h := range w.adopted {
		known[h.ID] = true
		cr := rec.Containers[h.ContainerName]
		if cr == nil {
			cr = &containerRecord{}
			rec.Containers[h.ContainerName] = cr
		}
		switch {
		case cr.Current != nil && cr.Current.ID == h.ID, cr.Previous != nil && cr.Previous.ID == h.ID:
		case cr.Current == nil || h.Attempt > cr.Current.Attempt:
			// Started just before the agent went down, before its handle was saved.
			if cr.Current != nil {
				if cr.Previous != nil {
					strays = append(strays, cr.Previous)
				}
				cr.Previous, cr.LastTermination = cr.Current, cr.Terminated
				cr.RestartCount++
			}
			cr.Current, cr.Attempt, cr.Terminated = h, h.Attempt, nil
		default:
			strays = append(strays, h)
		}
	}
	for _, h := range strays {
		if w.ctx.Err() != nil {
			break
		}
		if st, err := d.Inspect(w.ctx, h.ID); err == nil && st.State != TaskExited {
			_ = d.Recover(w.ctx, h)
			w.stopTask(w.ctx, nil, nil, h.ID, orphanGrace, false)
		}
		w.destroyTask(h.ID)
	}

	if p != nil {
		for _, list := range []struct {
			specs    []api.Container
			statuses []api.ContainerStatus
			init     bool
		}{{p.Spec.InitContainers, p.Status.InitContainerStatuses, true}, {p.Spec.Containers, p.Status.ContainerStatuses, false}} {
			for _, spec := range list.specs {
				cr := rec.Containers[spec.Name]
				if cr == nil {
					cr = &containerRecord{}
					rec.Containers[spec.Name] = cr
				}
				cr.Init = list.init
				for _, cs := range list.statuses {
					if cs.Name != spec.Name {
						continue
					}
					cr.RestartCount = max(cr.RestartCount, cs.RestartCount)
					if cr.Image == "" && cr.Current != nil {
						// A task found without its record: trust the status on what it
						// runs rather than restart it as changed.
						cr.Image, cr.ImageID = cs.Image, cs.ImageID
					}
				}
				if cr.Image == "" && cr.Current != nil {
					cr.Image = spec.Image
				}
				w.ctrs[spec.Name] = &container{name: spec.Name, init: list.init, rec: cr}
			}
		}
	}
	for name, cr := range rec.Containers {
		if w.ctrs[name] == nil {
			w.ctrs[name] = &container{name: name, init: cr.Init, rec: cr}
		}
	}

	supervise := p != nil && p.DeletionTimestamp == nil
	var probes []func()
	for _, c := range w.ctrs {
		if start := w.reattach(c, known[c.rec.Current.id()], supervise); start != nil {
			probes = append(probes, start)
		}
	}

	if w.ctx.Err() != nil {
		return // the agent is stopping; what was found is not saved
	}
	if p != nil {
		w.initDoneFromStatus(p)
		if p.IsTerminal() {
			w.terminal, w.frozen = true, true
		}
		st := api.DeepCopyOf(p).Status
		w.status = &st
	}
	if fresh {
		w.publishIndex()
	} else {
		w.save()
	}
	for _, start := range probes {
		start()
	}
}

// finishedAt is when a terminated state says its task ended; zero if it does not say.
func finishedAt(t *api.ContainerStateTerminated) time.Time {
	if t == nil || t.FinishedAt == nil {
		return time.Time{}
	}
	return t.FinishedAt.Time
}

func (h *TaskHandle) id() string {
	if h == nil {
		return ""
	}
	return h.ID
}

// reattach finds out what became of a container's current task while the agent was
// down: still running (recover and supervise it), exited, or lost. For a running task
// it returns what starts its probes, to be called once the worker's state is saved.
func (w *podWorker) reattach(c *container, known, supervise bool) (startProbes func()) {
	d, cr := w.driver, c.rec
	if cr.Current == nil || cr.Terminated != nil {
		c.restartAt = finishedAt(cr.Terminated)
		return nil
	}
	h := cr.Current
	defer func() {
		if cr.Terminated != nil {
			c.restartAt = finishedAt(cr.Terminated)
			w.log.Info("container ended while the agent was down", zap.String("container", c.name), zap.String("task", h.ID),
				zap.Int32("exit_code", cr.Terminated.ExitCode), zap.String("reason", cr.Terminated.Reason))
		}
	}()
	st, err := d.Inspect(w.ctx, h.ID)
	if w.ctx.Err() != nil {
		return nil // the agent is stopping: conclude nothing
	}
	if err != nil && !known {
		cr.Terminated = w.termination(h, &ExitResult{Err: errors.New("the task was not found when the agent restarted")})
		return nil
	}
	if err == nil && st.State == TaskExited {
		res := st.Exit
		if res == nil {
			res = &ExitResult{Err: errors.New("the task exited while the agent was down and its exit status is lost"), FinishedAt: st.FinishedAt}
		}
		cr.Terminated = w.termination(h, res)
		return nil
	}
	if err := d.Recover(w.ctx, h); err != nil {
		if w.ctx.Err() != nil {
			return nil
		}
		if !known {
			cr.Terminated = w.termination(h, &ExitResult{Err: fmt.Errorf("the task was not found when the agent restarted: %w", err)})
			return nil
		}
		// A task the agent cannot supervise is stopped rather than left unwatched,
		// since the restart policy would otherwise start a second one beside it.
		w.log.Warn("recovering task failed; stopping it", zap.String("task", h.ID), zap.Error(err))
		w.stopTask(w.ctx, nil, nil, h.ID, orphanGrace, false)
		cr.Terminated = w.termination(h, &ExitResult{Err: fmt.Errorf("recovering the task after an agent restart failed: %w", err)})
		return nil
	}
	w.log.Info("adopted running task", zap.String("container", c.name), zap.String("task", h.ID), zap.Int("pid", h.PID))
	c.running = true
	id, name := h.ID, c.name
	w.a.spawn(func() { w.wait(name, id) })
	spec := w.spec(c.name)
	if !supervise || spec == nil {
		return nil
	}
	c.started = spec.StartupProbe == nil
	c.ready = !c.init && spec.ReadinessProbe == nil
	// What the probes had established stays so until they say otherwise: an agent
	// restart does not make a ready pod unready for a period.
	for _, cs := range w.pod.Status.ContainerStatuses {
		if cs.Name == c.name && cs.ContainerID == containerID(id) && cs.State.Running != nil {
			if cs.Started != nil && *cs.Started {
				c.started = true
			}
			if spec.ReadinessProbe != nil && c.started {
				c.ready = cs.Ready
			}
		}
	}
	pctx, cancel := context.WithCancel(w.ctx)
	c.stopProbes = cancel
	p, started := w.pod, c.started
	return func() {
		if started {
			w.startRunningProbes(pctx, p, spec, id)
		} else {
			w.startProbes(pctx, p, spec, id)
		}
	}
}

// initDoneFromStatus marks init containers as done when the agent has no task or
// record of them but the pod shows they completed: their tasks were destroyed, or
// the record lost. Once any container of the pod has run, the init containers are
// done whatever their records say, as the kubelet decides.
func (w *podWorker) initDoneFromStatus(p *api.Pod) {
	mainRan := false
	for _, spec := range p.Spec.Containers {
		if w.ctrs[spec.Name].rec.Current != nil {
			mainRan = true
		}
	}
	for _, spec := range p.Spec.InitContainers {
		cr := w.ctrs[spec.Name].rec
		if cr.Current != nil || cr.Terminated != nil {
			continue
		}
		for _, cs := range p.Status.InitContainerStatuses {
			if cs.Name == spec.Name && cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0 {
				cr.Terminated = cs.State.Terminated
			}
		}
		if cr.Terminated == nil && mainRan {
			cr.Terminated = &api.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}
		}
	}
}
