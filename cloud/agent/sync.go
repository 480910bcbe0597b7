package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Waiting reasons, as the kubelet reports them.
const (
	reasonContainerCreating = "ContainerCreating"
	reasonPodInitializing   = "PodInitializing"
	reasonCrashLoopBackOff  = "CrashLoopBackOff"
	reasonErrImagePull      = "ErrImagePull"
	reasonImagePullBackOff  = "ImagePullBackOff"
	reasonConfigError       = "CreateContainerConfigError"
	reasonStartError        = "StartError"
	reasonStatusUnknown     = "ContainerStatusUnknown"
)

// minGraceAfterPreStop is what a task gets to stop after a preStop hook used up the
// grace period (the kubelet's minimumGracePeriodInSeconds).
const minGraceAfterPreStop = 2 * time.Second

// containerID is how a task is named in a pod's status.
func containerID(taskID string) string { return "cloudbox://" + taskID }

// sync does the next step(s) towards the pod's spec: set up the volumes, run the init
// containers one after another, then start the containers and restart those that
// exited as the restart policy says. It returns when it wants to be woken up again
// (zero for "on the next event").
func (w *podWorker) sync() time.Time {
	if w.terminal || w.pod == nil {
		return time.Time{}
	}
	p := w.pod
	now := w.a.cfg.Clock.Now()
	if w.vols == nil {
		if w.volRetry.waiting(now) {
			return w.volRetry.at
		}
		vols, err := w.a.setupVolumes(p, newSources(w.podCtx, w.a.cfg.Client, p.Namespace))
		if err != nil {
			if w.podCtx.Err() != nil {
				return time.Time{}
			}
			if w.volErr != err.Error() {
				w.log.Warn("setting up the pod's volumes failed", zap.Error(err))
			}
			w.event(api.EventWarning, "FailedMount", "MountVolume.SetUp failed: %v", err)
			w.volErr = err.Error()
			return w.volRetry.failed(w.a.policy(), now)
		}
		w.vols, w.volErr = vols, ""
		w.volRetry.reset()
	}

	for i := range p.Spec.InitContainers {
		spec := &p.Spec.InitContainers[i]
		c := w.ctrs[spec.Name]
		switch {
		case c.running || c.killing:
			return time.Time{} // one at a time: wait for its exit
		case c.rec.succeeded():
			continue
		case c.rec.Terminated != nil:
			if p.Spec.RestartPolicy == api.RestartNever {
				return time.Time{} // the pod has failed; publish says so
			}
			if now.Before(c.restartAt) {
				c.waiting = w.crashLoop(c)
				return c.restartAt
			}
		}
		return w.start(c, spec)
	}

	var next time.Time
	for i := range p.Spec.Containers {
		spec := &p.Spec.Containers[i]
		c := w.ctrs[spec.Name]
		switch {
		case c.running:
			if spec.Image != c.rec.Image && !c.killing {
				w.log.Info("container image changed; restarting it", zap.String("container", c.name), zap.String("image", spec.Image))
				c.restartNow = true
				w.kill(c, fmt.Sprintf("Container %s definition changed, will be restarted", c.name))
			}
		case c.killing:
		case c.rec.Current == nil:
			next = earliest(next, w.start(c, spec))
		case c.restartNow:
			next = earliest(next, w.start(c, spec))
		case !shouldRestart(p.Spec.RestartPolicy, c.rec.Terminated):
			c.waiting = nil
		case now.Before(c.restartAt):
			c.waiting = w.crashLoop(c)
			next = earliest(next, c.restartAt)
		default:
			next = earliest(next, w.start(c, spec))
		}
	}
	return next
}

// shouldRestart applies the restart policy to a task that ended as t.
func shouldRestart(policy string, t *api.ContainerStateTerminated) bool {
	switch policy {
	case api.RestartNever:
		return false
	case api.RestartOnFailure:
		return t == nil || t.ExitCode != 0
	}
	return true
}

// crashLoop is the waiting state of a container in restart back-off. The message
// names the whole delay, as the kubelet's does, so that it stays the same (and the
// status unchanged) while the wait lasts. Entering the back-off (c.waiting not yet
// saying so) records a BackOff event.
func (w *podWorker) crashLoop(c *container) *api.ContainerStateWaiting {
	if c.waiting == nil || c.waiting.Reason != reasonCrashLoopBackOff {
		w.event(api.EventWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.name, w.pod.Name, w.pod.Namespace, w.pod.UID)
	}
	return &api.ContainerStateWaiting{Reason: reasonCrashLoopBackOff,
		Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", c.crash.delay, c.name, w.pod.Name, w.pod.Namespace, w.pod.UID)}
}

// start pulls the image, resolves the configuration and starts the next attempt of a
// container, then runs its postStart hook and starts its probes. It returns when it
// wants to try again after a failure that happened before the task could start.
func (w *podWorker) start(c *container, spec *api.Container) time.Time {
	p, d := w.pod, w.driver
	clk := w.a.cfg.Clock
	now := clk.Now()
	if c.preStartErr.waiting(now) {
		if c.waiting != nil && c.waiting.Reason == reasonErrImagePull {
			if show := c.preStartErr.failedAt.Add(min(pullErrorShown, c.preStartErr.delay)); now.Before(show) {
				return show
			}
			c.waiting = &api.ContainerStateWaiting{Reason: reasonImagePullBackOff, Message: fmt.Sprintf("Back-off pulling image %q", spec.Image)}
			w.event(api.EventNormal, "BackOff", "Back-off pulling image %q", spec.Image)
		}
		return c.preStartErr.at
	}
	if spec.ImagePullPolicy != api.PullNever {
		w.event(api.EventNormal, "Pulling", "Pulling image %q", spec.Image)
	}
	imageID, err := d.PullImage(w.podCtx, spec.Image, spec.ImagePullPolicy)
	if err != nil {
		if w.podCtx.Err() != nil {
			return time.Time{}
		}
		w.log.Warn("pulling image failed", zap.String("container", c.name), zap.String("image", spec.Image), zap.Error(err))
		w.event(api.EventWarning, "Failed", "Failed to pull image %q: %v", spec.Image, err)
		c.waiting = &api.ContainerStateWaiting{Reason: reasonErrImagePull, Message: err.Error()}
		c.preStartErr.failed(w.a.policy(), now)
		return c.preStartErr.failedAt.Add(min(pullErrorShown, c.preStartErr.delay))
	}
	if spec.ImagePullPolicy == api.PullNever {
		w.event(api.EventNormal, "Pulled", "Container image %q already present on machine", spec.Image)
	} else {
		w.event(api.EventNormal, "Pulled", "Successfully pulled image %q in %s", spec.Image, clk.Now().Sub(now).Round(time.Millisecond))
	}
	cfg, err := w.taskConfig(p, spec, imageID)
	if err != nil {
		if w.podCtx.Err() != nil {
			return time.Time{}
		}
		w.log.Warn("container configuration failed", zap.String("container", c.name), zap.Error(err))
		w.event(api.EventWarning, "Failed", "Error: %v", err)
		c.waiting = &api.ContainerStateWaiting{Reason: reasonConfigError, Message: err.Error()}
		return c.preStartErr.failed(w.a.policy(), now)
	}
	c.preStartErr.reset()

	restart := c.rec.Current != nil
	attempt := 0
	if restart {
		attempt = c.rec.Attempt + 1
	}
	cfg.ID = fmt.Sprintf("%s.%s.%d", p.UID, spec.Name, attempt)
	cfg.Attempt = attempt
	if w.ctx.Err() != nil {
		return time.Time{}
	}
	h, err := d.Start(w.ctx, cfg)
	if err != nil && w.ctx.Err() != nil {
		// The agent is stopping: whether the task exists is for the next agent to
		// find out from the driver's list.
		return time.Time{}
	}
	if restart {
		c.rec.RestartCount++
		c.crash.restarted(w.a.policy())
		// Only the attempt before the new one is kept, for `logs --previous`.
		if c.rec.Previous != nil {
			w.destroyTask(c.rec.Previous.ID)
		}
		c.rec.Previous, c.rec.LastTermination = c.rec.Current, c.rec.Terminated
	}
	c.rec.Attempt, c.rec.Image, c.rec.ImageID = attempt, spec.Image, imageID
	c.rec.Current, c.rec.Terminated = nil, nil
	c.restartNow = false
	c.waiting = nil
	if err != nil {
		// The kubelet's StartError: the attempt counts, and the restart policy and
		// back-off apply as to a crash.
		w.log.Warn("starting container failed", zap.String("container", c.name), zap.String("task", cfg.ID), zap.Error(err))
		w.event(api.EventWarning, "Failed", "Error: %v", err)
		w.destroyTask(cfg.ID)
		t := api.NewTime(now)
		c.rec.Current = &TaskHandle{ID: cfg.ID, Driver: d.Name(), PodUID: p.UID, ContainerName: spec.Name, Attempt: attempt, StartedAt: now}
		c.rec.Terminated = &api.ContainerStateTerminated{ExitCode: 128, Reason: reasonStartError, Message: err.Error(),
			StartedAt: t, FinishedAt: t, ContainerID: containerID(cfg.ID)}
		c.restartAt = c.crash.restartAt(w.a.policy(), now, 0)
		w.save()
		return now
	}
	if h.StartedAt.IsZero() {
		h.StartedAt = now
	}
	c.rec.Current = h
	c.running, c.killing, c.killMsg = true, false, ""
	c.started = spec.StartupProbe == nil
	c.ready = !c.init && spec.ReadinessProbe == nil
	w.save()
	w.log.Info("container started", zap.String("container", c.name), zap.String("task", h.ID), zap.Int("restarts", int(c.rec.RestartCount)))
	// The driver creates and starts in one call; both events are the kubelet's.
	w.event(api.EventNormal, "Created", "Created container %s", c.name)
	w.event(api.EventNormal, "Started", "Started container %s", c.name)
	id := h.ID
	w.a.spawn(func() { w.wait(c.name, id) })

	if ls := spec.Lifecycle; ls != nil && ls.PostStart != nil {
		// Like the kubelet, the container is not running (and the next one not
		// started) until its postStart hook returns.
		if err := w.runAction(w.podCtx, ls.PostStart, id, w.probeTarget(p, spec), 0); err != nil {
			if w.podCtx.Err() != nil {
				return time.Time{}
			}
			w.log.Warn("postStart hook failed; killing the container", zap.String("container", c.name), zap.Error(err))
			w.event(api.EventWarning, "FailedPostStartHook", "PostStartHook failed: %v", err)
			w.kill(c, fmt.Sprintf("PostStartHook failed: %v", err))
			return time.Time{}
		}
	}
	pctx, cancel := context.WithCancel(w.ctx)
	c.stopProbes = cancel
	w.startProbes(pctx, p, spec, id)
	return time.Time{}
}

// taskConfig resolves what the driver needs to run a container: environment,
// command and args expanded against it, mounts, per-pod files, limits, security.
func (w *podWorker) taskConfig(p *api.Pod, spec *api.Container, imageID string) (*TaskConfig, error) {
	src := newSources(w.podCtx, w.a.cfg.Client, p.Namespace)
	podIP := w.a.podIP(p)
	env, err := containerEnv(spec, src, downward{pod: p, podIP: podIP, hostIP: w.a.hostIP()})
	if err != nil {
		return nil, err
	}
	mounts, err := containerMounts(spec, w.vols)
	if err != nil {
		return nil, err
	}
	cfg := &TaskConfig{
		PodUID: p.UID, PodNamespace: p.Namespace, PodName: p.Name, ContainerName: spec.Name,
		Image: spec.Image, ImageID: imageID,
		Command:     expandAll(spec.Command, env.lookup),
		Args:        expandAll(spec.Args, env.lookup),
		Env:         env.strings(),
		WorkingDir:  spec.WorkingDir,
		Hostname:    w.a.podHostname(p),
		Mounts:      mounts,
		Files:       w.a.podFiles(p, podIP),
		HostNetwork: p.Spec.HostNetwork,
		TTY:         spec.TTY,
		Stdin:       spec.Stdin,
	}
	if q, ok := spec.Resources.Limits[api.ResourceCPU]; ok {
		cfg.CPUMilli = q.MilliValue()
	}
	if q, ok := spec.Resources.Limits[api.ResourceMemory]; ok {
		cfg.MemoryBytes = q.Value()
	}
	var uid, gid *int64
	if ps := p.Spec.SecurityContext; ps != nil {
		uid, gid = ps.RunAsUser, ps.RunAsGroup
	}
	if sc := spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
		cfg.Privileged = sc.Privileged != nil && *sc.Privileged
		cfg.ReadOnlyRootfs = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		if caps := sc.Capabilities; caps != nil {
			cfg.CapAdd, cfg.CapDrop = caps.Add, caps.Drop
		}
	}
	switch {
	case uid != nil && gid != nil:
		cfg.User = strconv.FormatInt(*uid, 10) + ":" + strconv.FormatInt(*gid, 10)
	case uid != nil:
		cfg.User = strconv.FormatInt(*uid, 10)
	}
	return cfg, nil
}

// onExit records a task's end.
func (w *podWorker) onExit(e taskExit) {
	c := w.ctrs[e.container]
	if c == nil || c.rec.Current == nil || c.rec.Current.ID != e.taskID || !c.running {
		return // an earlier attempt, or already seen
	}
	c.running, c.ready, c.started, c.killing = false, false, false, false
	if c.stopProbes != nil {
		c.stopProbes()
		c.stopProbes = nil
	}
	t := w.termination(c.rec.Current, e.res)
	if c.killMsg != "" {
		t.Message, c.killMsg = c.killMsg, ""
	}
	c.rec.Terminated = t
	c.waiting = nil
	// The status's times have whole seconds; the back-off counts from the exact end.
	fin := e.res.FinishedAt
	if fin.IsZero() {
		fin = w.a.cfg.Clock.Now()
	}
	c.restartAt = c.crash.restartAt(w.a.policy(), fin, fin.Sub(c.rec.Current.StartedAt))
	w.save()
	w.log.Info("container exited", zap.String("container", c.name), zap.String("task", e.taskID),
		zap.Int32("exit_code", t.ExitCode), zap.String("reason", t.Reason))
}

// termination is the terminated state of a task that ended as res.
func (w *podWorker) termination(h *TaskHandle, res *ExitResult) *api.ContainerStateTerminated {
	fin := res.FinishedAt
	if fin.IsZero() {
		fin = w.a.cfg.Clock.Now()
	}
	t := &api.ContainerStateTerminated{
		ExitCode: int32(res.Code), Signal: int32(res.Signal), Reason: res.Reason(),
		StartedAt: api.NewTime(h.StartedAt), FinishedAt: api.NewTime(fin), ContainerID: containerID(h.ID),
	}
	if res.Err != nil {
		// The exit was not observed: Kubernetes's wording and code for a container
		// whose end is unknown.
		t.Reason, t.Message = reasonStatusUnknown, res.Err.Error()
		if t.ExitCode == 0 {
			t.ExitCode = 137
		}
	}
	return t
}

// onProbe applies a probe's changed result.
func (w *podWorker) onProbe(r probeResult) {
	c := w.ctrs[r.container]
	if c == nil || !c.running || c.killing || c.rec.Current == nil || c.rec.Current.ID != r.taskID {
		return
	}
	switch {
	case r.kind == probeReadiness:
		c.ready = r.ok
		w.log.Info("readiness changed", zap.String("container", c.name), zap.Bool("ready", r.ok), zap.String("message", r.msg))
	case r.kind == probeStartup && r.ok:
		c.started = true
		if spec := w.spec(c.name); spec != nil && c.stopProbes != nil {
			pctx, cancel := context.WithCancel(w.ctx)
			prev := c.stopProbes
			c.stopProbes = func() { prev(); cancel() }
			w.startRunningProbes(pctx, w.pod, spec, r.taskID)
		}
	case r.ok:
		// Liveness passing: nothing to do.
	default:
		w.log.Info("probe failed; restarting the container", zap.String("container", c.name), zap.Stringer("probe", r.kind), zap.String("message", r.msg))
		w.kill(c, fmt.Sprintf("Container %s failed %s probe, will be restarted: %s", c.name, r.kind, r.msg))
	}
}

// kill stops the current task of c in the background, its preStop hook first; its
// exit then arrives like any other.
func (w *podWorker) kill(c *container, msg string) {
	if c.killing || c.rec.Current == nil {
		return
	}
	c.killing, c.killMsg, c.ready = true, msg, false
	w.event(api.EventNormal, "Killing", "%s", msg)
	if c.stopProbes != nil {
		c.stopProbes()
		c.stopProbes = nil
	}
	spec := w.spec(c.name)
	id, grace, p := c.rec.Current.ID, podGrace(w.pod), w.pod
	w.a.spawn(func() { w.stopTask(w.ctx, p, spec, id, grace, true) })
}

// podGrace is the pod's terminationGracePeriodSeconds.
func podGrace(p *api.Pod) time.Duration {
	if p != nil && p.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*p.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return api.DefaultTerminationGracePeriodSeconds * time.Second
}

// stopTask runs the container's preStop hook (if asked and it has one) within grace,
// then stops the task with what is left of it.
func (w *podWorker) stopTask(ctx context.Context, p *api.Pod, spec *api.Container, id string, grace time.Duration, preStop bool) {
	if preStop && grace > 0 && p != nil && spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil {
		began := w.a.cfg.Clock.Now()
		if err := w.runAction(ctx, spec.Lifecycle.PreStop, id, w.probeTarget(p, spec), grace); err != nil {
			w.log.Warn("preStop hook failed", zap.String("task", id), zap.Error(err))
		}
		grace = max(grace-w.a.cfg.Clock.Now().Sub(began), minGraceAfterPreStop)
	}
	if err := w.driver.Stop(ctx, id, grace); err != nil && ctx.Err() == nil {
		w.log.Warn("stopping task failed", zap.String("task", id), zap.Error(err))
	}
}

// destroyTask removes what an exited task left.
func (w *podWorker) destroyTask(id string) {
	if err := w.driver.Destroy(w.ctx, id); err != nil && !errors.Is(err, context.Canceled) {
		w.log.Warn("destroying task failed", zap.String("task", id), zap.Error(err))
	}
}
