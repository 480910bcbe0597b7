package agent

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// podWorker drives one pod (one UID) to its spec, the kubelet's pod worker: one
// goroutine owns the pod's state and acts on it; task exits, probe results and new
// versions of the pod reach it through an inbox and wake it up. Driver calls that may
// block long (stopping a task within its grace period, waiting for an exit, probing)
// run on goroutines of their own and report back through the inbox.
type podWorker struct {
	a   *Agent
	uid string
	log *zap.Logger
	// ctx is the agent's: tasks, exit waits and probes live within it.
	ctx context.Context
	// podCtx also ends once the pod is to be terminated, so that an image pull, a
	// ConfigMap read or a postStart hook in progress gives way to the deletion.
	podCtx    context.Context
	cancelPod context.CancelFunc
	wake      chan struct{}
	// adopted are the driver's tasks of this pod when the agent started; listed is
	// set when they come from the driver's list taken at adoption.
	adopted []*TaskHandle
	listed  bool
	// driver runs the pod's tasks (the one its runtimeClassName names); set by load.
	driver Driver

	mu     sync.Mutex // guards the fields up to the blank line
	latest *api.Pod   // the newest version seen; nil if the pod was never seen
	gone   bool       // deleted from the API
	inbox  []any      // taskExit and probeResult
	index  podIndex   // what Logs and Exec need

	// Owned by the run goroutine:
	pod      *api.Pod
	rec      *podRecord
	ctrs     map[string]*container
	vols     map[string]podVolume // nil until the volumes are set up
	volRetry retry
	volErr   string
	// terminal is set once the pod Succeeded or Failed: nothing is started again.
	terminal bool
	// frozen is a pod that was already terminal when the agent started: its status
	// is the API's, and the agent no longer writes it.
	frozen bool
	status *api.PodStatus // last status handed to the writer
	writer *statusWriter
}

// container is one container's state in its worker.
type container struct {
	name string
	init bool
	rec  *containerRecord
	// running is true from a task's start until the agent sees it exit.
	running bool
	ready   bool
	// started is false while a startup probe has not succeeded.
	started bool
	// waiting is why the container is not running, when it is to run (again).
	waiting *api.ContainerStateWaiting
	// killing is set while the agent stops the current task (failed liveness,
	// startup or postStart, changed image); killMsg becomes the termination message.
	killing bool
	killMsg string
	// restartNow restarts the task regardless of the restart policy and back-off
	// (its image changed).
	restartNow  bool
	stopProbes  context.CancelFunc
	crash       backoff
	restartAt   time.Time // when an exited task may be replaced
	preStartErr retry     // image pull and configuration failures
}

// taskExit is a task's end, as Driver.Wait reported it.
type taskExit struct {
	container string
	taskID    string
	res       *ExitResult
}

// podIndex is the snapshot of a pod's tasks that Logs and Exec read.
type podIndex struct {
	namespace, name string
	containers      []string // the pod's containers (not the init ones), in spec order
	tasks           map[string]taskRefs
	driver          Driver
}

type taskRefs struct {
	current, previous string
	running           bool
	waiting           string
}

func newPodWorker(a *Agent, ctx context.Context, uid string, adopted []*TaskHandle) *podWorker {
	w := &podWorker{
		a: a, uid: uid, ctx: ctx, adopted: adopted,
		log:  a.log.With(zap.String("pod_uid", uid)),
		wake: make(chan struct{}, 1),
		ctrs: map[string]*container{},
	}
	w.podCtx, w.cancelPod = context.WithCancel(ctx)
	w.writer = newStatusWriter(w)
	return w
}

// update hands the worker a new version of its pod. It never blocks.
func (w *podWorker) update(p *api.Pod) {
	w.mu.Lock()
	w.latest = p
	w.mu.Unlock()
	if p.DeletionTimestamp != nil {
		w.cancelPod()
	}
	w.kick()
}

// removed tells the worker its pod is gone from the API.
func (w *podWorker) removed() {
	w.mu.Lock()
	w.gone = true
	w.mu.Unlock()
	w.cancelPod()
	w.kick()
}

// post queues a task exit or probe result for the worker. It never blocks.
func (w *podWorker) post(ev any) {
	w.mu.Lock()
	w.inbox = append(w.inbox, ev)
	w.mu.Unlock()
	w.kick()
}

func (w *podWorker) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// event records an event about the pod (a no-op without a Recorder, or before the
// pod was seen). Any goroutine may call it.
func (w *podWorker) event(typ, reason, messageFmt string, args ...any) {
	if p := w.latestPod(); p != nil {
		w.a.cfg.Recorder.Event(p, typ, reason, messageFmt, args...)
	}
}

// latestPod returns the newest version of the pod seen, or nil.
func (w *podWorker) latestPod() *api.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

// run is the worker's goroutine. It returns once the pod is terminated and removed,
// or when the agent stops (the tasks then keep running, for the next agent to adopt).
func (w *podWorker) run() {
	defer w.a.pods.finished(w)
	defer w.cancelPod()
	wctx, stopWriter := context.WithCancel(w.ctx)
	defer stopWriter()
	w.a.spawn(func() { w.writer.run(wctx) })

	if w.ctx.Err() != nil {
		return
	}
	w.load()
	clk := w.a.cfg.Clock
	var timer Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for w.ctx.Err() == nil {
		if w.drain() {
			stopWriter()
			w.terminate()
			return
		}
		next := w.sync()
		if timer != nil {
			timer.Stop()
			timer = nil
		}
		var fire <-chan time.Time
		if !next.IsZero() {
			timer = clk.NewTimer(next.Sub(clk.Now()))
			fire = timer.C()
		}
		// The timer is armed before the status goes out, so that whoever sees the
		// status (a back-off, say) may count on the timer being set.
		w.publish()
		select {
		case <-w.ctx.Done():
			return
		case <-w.wake:
		case <-fire:
		}
	}
}

// drain applies what arrived since the last round and reports whether the pod is to
// be terminated (deleted, or marked for deletion).
func (w *podWorker) drain() (terminate bool) {
	w.mu.Lock()
	p, gone, evs := w.latest, w.gone, w.inbox
	w.inbox = nil
	w.mu.Unlock()
	if p != nil {
		w.pod = p
	}
	for _, ev := range evs {
		switch ev := ev.(type) {
		case taskExit:
			w.onExit(ev)
		case probeResult:
			w.onProbe(ev)
		}
	}
	return gone || w.pod == nil || w.pod.DeletionTimestamp != nil
}

// spec returns the pod's spec of the named container, or nil.
func (w *podWorker) spec(name string) *api.Container {
	if w.pod == nil {
		return nil
	}
	for _, list := range [][]api.Container{w.pod.Spec.InitContainers, w.pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// save persists the pod's record; a failure is logged, since the driver's own list
// of tasks still lets a restarted agent find them.
func (w *podWorker) save() {
	if err := w.a.saveRecord(w.rec); err != nil {
		w.log.Error("saving the pod's task handles failed", zap.Error(err))
	}
	w.publishIndex()
}

// publishIndex refreshes what Logs and Exec see.
func (w *podWorker) publishIndex() {
	idx := podIndex{namespace: w.rec.Namespace, name: w.rec.Name, tasks: map[string]taskRefs{}, driver: w.driver}
	if w.pod != nil {
		idx.namespace, idx.name = w.pod.Namespace, w.pod.Name
		for _, c := range w.pod.Spec.Containers {
			idx.containers = append(idx.containers, c.Name)
		}
	}
	for name, c := range w.ctrs {
		var r taskRefs
		if c.rec.Current != nil {
			r.current = c.rec.Current.ID
		}
		if c.rec.Previous != nil {
			r.previous = c.rec.Previous.ID
		}
		r.running = c.running
		if c.waiting != nil {
			r.waiting = c.waiting.Reason
		}
		idx.tasks[name] = r
	}
	w.mu.Lock()
	w.index = idx
	w.mu.Unlock()
}

// wait reports the end of a task to the worker.
func (w *podWorker) wait(name, id string) {
	res, err := w.driver.Wait(w.ctx, id)
	if w.ctx.Err() != nil {
		return // the agent is stopping; the next one adopts the task
	}
	if err != nil {
		res = &ExitResult{Err: err}
	}
	w.post(taskExit{container: name, taskID: id, res: res})
}
