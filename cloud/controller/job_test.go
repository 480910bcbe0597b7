package controller

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// manualClock is a Clock whose time moves only by Advance.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
	added  chan struct{} // signalled on every NewTimer
}

type manualTimer struct {
	at    time.Time
	c     chan time.Time
	fired bool
}

func newManualClock(now time.Time) *manualClock {
	return &manualClock{now: now, added: make(chan struct{}, 1000)}
}

func (f *manualClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *manualClock) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	t := &manualTimer{at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.fired = true
		t.c <- f.now
	} else {
		f.timers = append(f.timers, t)
	}
	f.mu.Unlock()
	f.added <- struct{}{}
	return &manualTimerHandle{f, t}
}

type manualTimerHandle struct {
	f *manualClock
	t *manualTimer
}

func (h *manualTimerHandle) C() <-chan time.Time { return h.t.c }
func (h *manualTimerHandle) Stop() bool {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	was := !h.t.fired
	h.t.fired = true
	return was
}

// Advance moves the time by d and fires the timers due.
func (f *manualClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	var keep []*manualTimer
	for _, t := range f.timers {
		switch {
		case t.fired:
		case !t.at.After(f.now):
			t.fired = true
			t.c <- f.now
		default:
			keep = append(keep, t)
		}
	}
	f.timers = keep
}

// waitTimer waits until a pending timer is due at or before at.
func (f *manualClock) waitTimer(t *testing.T, at time.Time) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		for _, tm := range f.timers {
			if !tm.fired && !tm.at.After(at) {
				f.mu.Unlock()
				return
			}
		}
		f.mu.Unlock()
		select {
		case <-f.added:
		case <-deadline:
			t.Fatalf("no timer set for %v", at)
		}
	}
}

var (
	batchJobKind, _ = api.LookupKind("jobs")
	jobPodKind, _   = api.LookupKind("pods")
	jobEventKind, _ = api.LookupKind("events")
)

func jobPtr[T any](v T) *T { return &v }

func testJob(name string) *api.Job {
	return &api.Job{
		TypeMeta:   api.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.JobSpec{Template: api.PodTemplateSpec{Spec: api.PodSpec{
			RestartPolicy: api.RestartNever,
			Containers:    []api.Container{{Name: "c", Image: "busybox"}},
		}}},
	}
}

// startJobController runs a Job controller against a fresh API server.
func startJobController(t *testing.T, clock Clock, backoff time.Duration) (*client.Client, *JobController) {
	t.Helper()
	cl := newTestAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	d := testDeps(t, cl)
	d.Clock, d.Logger = clock, zaptest.NewLogger(t)
	c := NewJobController(d)
	c.BackoffBase = backoff
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cl, c
}

// jobWatchUntil watches kind in default until cond holds for the object list (fetched
// afresh on each change), or fails after 20 s.
func jobWatchUntil[T api.Object](t *testing.T, cl *client.Client, k *api.KindInfo, what string, cond func([]T) bool) []T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		l, err := cl.List(ctx, k, "default", client.ListOptions{})
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		var objs []T
		for _, o := range l.Items {
			objs = append(objs, o.(T))
		}
		if cond(objs) {
			return objs
		}
		w, err := cl.Watch(ctx, k, "default", client.ListOptions{ResourceVersion: l.ResourceVersion})
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		select {
		case <-w:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; last: %s", what, jobDescribeObjs(objs))
		}
	}
}

func jobDescribeObjs[T api.Object](objs []T) string {
	s := ""
	for _, o := range objs {
		switch v := any(o).(type) {
		case *api.Pod:
			s += fmt.Sprintf(" %s(%s)", v.Name, v.Status.Phase)
		case *api.Job:
			s += fmt.Sprintf(" %s%+v", v.Name, v.Status)
		default:
			s += " " + o.GetObjectMeta().Name
		}
	}
	return s
}

func waitJob(t *testing.T, cl *client.Client, name, what string, cond func(*api.Job) bool) *api.Job {
	t.Helper()
	var got *api.Job
	jobWatchUntil(t, cl, batchJobKind, "job "+name+" "+what, func(js []*api.Job) bool {
		for _, j := range js {
			if j.Name == name && cond(j) {
				got = j
				return true
			}
		}
		return false
	})
	return got
}

func jobActivePods(ps []*api.Pod) []*api.Pod {
	var out []*api.Pod
	for _, p := range ps {
		if !p.IsTerminal() && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func waitJobActivePods(t *testing.T, cl *client.Client, n int) []*api.Pod {
	t.Helper()
	return jobActivePods(jobWatchUntil(t, cl, jobPodKind, fmt.Sprintf("%d active pods", n), func(ps []*api.Pod) bool { return len(jobActivePods(ps)) == n }))
}

// finishJobPod plays the agent: it sets the pod's phase.
func finishJobPod(t *testing.T, cl *client.Client, p *api.Pod, phase string) {
	t.Helper()
	p = api.DeepCopy(p).(*api.Pod)
	p.Status.Phase = phase
	if _, err := cl.UpdateStatus(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func jobHasCondition(j *api.Job, typ, reason string) bool {
	c := j.Status.Condition(typ)
	return c != nil && c.Status == api.ConditionTrue && c.Reason == reason
}

func TestJobCompletionsWithParallelism(t *testing.T) {
	cl, _ := startJobController(t, nil, time.Millisecond)
	j := testJob("work")
	j.Spec.Parallelism, j.Spec.Completions = jobPtr(int32(2)), jobPtr(int32(5))
	if _, err := cl.Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	for done := 0; done < 5; done++ {
		want := min(2, 5-done)
		pods := waitJobActivePods(t, cl, want)
		for _, p := range pods {
			if p.Labels[api.LabelJobName] != "work" || p.Labels[api.LabelControllerUID] == "" || p.ControllerRef() == nil {
				t.Fatalf("pod %s: labels %v owners %v", p.Name, p.Labels, p.OwnerReferences)
			}
		}
		finishJobPod(t, cl, pods[0], api.PodSucceeded)
		waitJob(t, cl, "work", fmt.Sprintf("%d succeeded", done+1), func(j *api.Job) bool { return j.Status.Succeeded == int32(done+1) })
	}
	got := waitJob(t, cl, "work", "complete", func(j *api.Job) bool { return jobHasCondition(j, api.JobComplete, "") })
	if got.Status.CompletionTime == nil || got.Status.StartTime == nil || got.Status.Active != 0 {
		t.Errorf("status %+v", got.Status)
	}
	all := jobWatchUntil(t, cl, jobPodKind, "pods", func([]*api.Pod) bool { return true })
	if len(all) != 5 {
		t.Errorf("%d pods created, want 5: %s", len(all), jobDescribeObjs(all))
	}
	jobWatchUntil(t, cl, jobEventKind, "Completed event", func(es []*api.Event) bool {
		for _, e := range es {
			if e.Reason == "Completed" && e.InvolvedObject.Name == "work" {
				return true
			}
		}
		return false
	})
}

func TestJobBackoffLimit(t *testing.T) {
	cl, _ := startJobController(t, nil, time.Millisecond)
	j := testJob("flaky")
	j.Spec.BackoffLimit = jobPtr(int32(2))
	if _, err := cl.Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		pods := waitJobActivePods(t, cl, 1)
		finishJobPod(t, cl, pods[0], api.PodFailed)
		waitJob(t, cl, "flaky", fmt.Sprintf("%d failed", i+1), func(j *api.Job) bool { return j.Status.Failed == int32(i+1) })
	}
	got := waitJob(t, cl, "flaky", "failed", func(j *api.Job) bool { return jobHasCondition(j, api.JobFailed, api.JobReasonBackoffLimitExceeded) })
	if got.Status.Active != 0 {
		t.Errorf("active = %d after failure", got.Status.Active)
	}
	waitJobActivePods(t, cl, 0)
}

func TestJobBackoffWaitsOnClock(t *testing.T) {
	clock := newManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	cl, _ := startJobController(t, clock, 10*time.Second)
	j := testJob("slow")
	if _, err := cl.Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	pods := waitJobActivePods(t, cl, 1)
	finishJobPod(t, cl, pods[0], api.PodFailed)
	// The controller must wait for the back-off: a timer 10 s ahead, and no new pod.
	clock.waitTimer(t, clock.Now().Add(10*time.Second))
	if ps := jobActivePods(jobWatchUntil(t, cl, jobPodKind, "pods", func([]*api.Pod) bool { return true })); len(ps) != 0 {
		t.Fatalf("pod recreated before the back-off: %s", jobDescribeObjs(ps))
	}
	clock.Advance(10 * time.Second)
	waitJobActivePods(t, cl, 1)
}

func TestJobActiveDeadline(t *testing.T) {
	clock := newManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	cl, _ := startJobController(t, clock, time.Millisecond)
	j := testJob("deadline")
	j.Spec.ActiveDeadlineSeconds = jobPtr(int64(60))
	if _, err := cl.Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	waitJobActivePods(t, cl, 1)
	clock.waitTimer(t, clock.Now().Add(60*time.Second))
	clock.Advance(61 * time.Second)
	waitJob(t, cl, "deadline", "failed", func(j *api.Job) bool { return jobHasCondition(j, api.JobFailed, api.JobReasonDeadlineExceeded) })
	waitJobActivePods(t, cl, 0)
}

func TestJobTTLAfterFinished(t *testing.T) {
	cl, _ := startJobController(t, nil, time.Millisecond)
	j := testJob("short-lived")
	j.Spec.TTLSecondsAfterFinished = jobPtr(int32(0))
	if _, err := cl.Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	pods := waitJobActivePods(t, cl, 1)
	finishJobPod(t, cl, pods[0], api.PodSucceeded)
	jobWatchUntil(t, cl, batchJobKind, "job deleted", func(js []*api.Job) bool { return len(js) == 0 })
	jobWatchUntil(t, cl, jobPodKind, "pods deleted", func(ps []*api.Pod) bool { return len(ps) == 0 })
}

func TestJobSuspend(t *testing.T) {
	cl, _ := startJobController(t, nil, time.Millisecond)
	j := testJob("paused")
	j.Spec.Parallelism, j.Spec.Completions = jobPtr(int32(2)), jobPtr(int32(2))
	if _, err := cl.Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	waitJobActivePods(t, cl, 2)
	setSuspend(t, cl, batchJobKind, "paused", true)
	waitJobActivePods(t, cl, 0)
	waitJob(t, cl, "paused", "suspended", func(j *api.Job) bool { return jobHasCondition(j, api.JobSuspended, "JobSuspended") })
	setSuspend(t, cl, batchJobKind, "paused", false)
	waitJobActivePods(t, cl, 2)
}

// setSuspend sets spec.suspend with a merge patch, which a controller's status
// writes cannot conflict with.
func setSuspend(t *testing.T, cl *client.Client, k *api.KindInfo, name string, on bool) {
	t.Helper()
	if _, err := cl.Patch(context.Background(), k, "default", name, "", []byte(fmt.Sprintf(`{"spec":{"suspend":%t}}`, on))); err != nil {
		t.Fatal(err)
	}
}
