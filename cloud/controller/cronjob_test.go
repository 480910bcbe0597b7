package controller

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

var cronJobKind, _ = api.LookupKind("cronjobs")

// advanceToNextTimer waits for a pending timer and moves the clock to it.
func (f *manualClock) advanceToNextTimer(t *testing.T) time.Time {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		var next time.Time
		for _, tm := range f.timers {
			if !tm.fired && (next.IsZero() || tm.at.Before(next)) {
				next = tm.at
			}
		}
		now := f.now
		f.mu.Unlock()
		if !next.IsZero() {
			f.Advance(next.Sub(now))
			return next
		}
		select {
		case <-f.added:
		case <-deadline:
			t.Fatal("no timer set")
		}
	}
}

// startCronJobController runs a CronJob controller on a manual clock set to the wall
// clock's time (the store stamps creation times with the wall clock).
func startCronJobController(t *testing.T) (*client.Client, *manualClock) {
	t.Helper()
	cl := newTestAPI(t)
	clock := newManualClock(time.Now().Truncate(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	d := testDeps(t, cl)
	d.Clock, d.Logger = clock, zaptest.NewLogger(t)
	c := NewCronJobController(d)
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cl, clock
}

func testCronJob(name, schedule string) *api.CronJob {
	return &api.CronJob{
		TypeMeta:   api.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.CronJobSpec{Schedule: schedule, JobTemplate: api.JobTemplateSpec{
			Metadata: api.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec:     testJob("x").Spec,
		}},
	}
}

func jobNames(js []*api.Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.Name)
	}
	sort.Strings(out)
	return out
}

func waitJobs(t *testing.T, cl *client.Client, what string, cond func([]*api.Job) bool) []*api.Job {
	t.Helper()
	return jobWatchUntil(t, cl, batchJobKind, what, cond)
}

// setJobFinished plays the Job controller: it marks the Job Complete or Failed.
func setJobFinished(t *testing.T, cl *client.Client, j *api.Job, typ string) {
	t.Helper()
	j = api.DeepCopy(j).(*api.Job)
	now := api.Now()
	j.Status.Conditions = append(j.Status.Conditions, api.JobCondition{Type: typ, Status: api.ConditionTrue, LastTransitionTime: now})
	if typ == api.JobComplete {
		j.Status.CompletionTime = now
	}
	if _, err := cl.UpdateStatus(context.Background(), j); err != nil {
		t.Fatal(err)
	}
}

func TestCronJobCreatesJobAtEachSchedule(t *testing.T) {
	cl, clock := startCronJobController(t)
	if _, err := cl.Create(context.Background(), testCronJob("tick", "*/5 * * * *")); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 0; i < 3; i++ {
		at := clock.advanceToNextTimer(t)
		if at.Minute()%5 != 0 || at.Second() != 0 {
			t.Fatalf("woke at %v, not on the schedule", at)
		}
		want = append(want, CronJobRunName("tick", at))
		got := waitJobs(t, cl, strings.Join(want, ","), func(js []*api.Job) bool { return len(js) == len(want) })
		if names := jobNames(got); strings.Join(names, ",") != strings.Join(want, ",") {
			t.Fatalf("jobs %v, want %v", names, want)
		}
		j := got[0]
		if j.Labels["app"] != "tick" || j.ControllerRef() == nil || j.ControllerRef().Kind != "CronJob" {
			t.Errorf("job %s: labels %v owners %v", j.Name, j.Labels, j.OwnerReferences)
		}
	}
	jobWatchUntil(t, cl, cronJobKind, "status with 3 active", func(cs []*api.CronJob) bool {
		return len(cs) == 1 && len(cs[0].Status.Active) == 3 && cs[0].Status.LastScheduleTime != nil
	})
}

func TestCronJobForbid(t *testing.T) {
	cl, clock := startCronJobController(t)
	cj := testCronJob("single", "* * * * *")
	cj.Spec.ConcurrencyPolicy = api.ConcurrencyForbid
	if _, err := cl.Create(context.Background(), cj); err != nil {
		t.Fatal(err)
	}
	first := clock.advanceToNextTimer(t)
	js := waitJobs(t, cl, "first job", func(js []*api.Job) bool { return len(js) == 1 })
	second := clock.advanceToNextTimer(t)
	jobWatchUntil(t, cl, jobEventKind, "JobAlreadyActive event", func(es []*api.Event) bool {
		for _, e := range es {
			if e.Reason == "JobAlreadyActive" {
				return true
			}
		}
		return false
	})
	if got := waitJobs(t, cl, "jobs", func([]*api.Job) bool { return true }); len(got) != 1 || got[0].Name != CronJobRunName("single", first) {
		t.Fatalf("jobs %v while the first is active", jobNames(got))
	}
	// When the active one ends, the postponed run starts.
	setJobFinished(t, cl, js[0], api.JobComplete)
	waitJobs(t, cl, "second job", func(js []*api.Job) bool {
		for _, j := range js {
			if j.Name == CronJobRunName("single", second) {
				return true
			}
		}
		return false
	})
}

func TestCronJobReplace(t *testing.T) {
	cl, clock := startCronJobController(t)
	cj := testCronJob("latest", "* * * * *")
	cj.Spec.ConcurrencyPolicy = api.ConcurrencyReplace
	if _, err := cl.Create(context.Background(), cj); err != nil {
		t.Fatal(err)
	}
	clock.advanceToNextTimer(t)
	waitJobs(t, cl, "first job", func(js []*api.Job) bool { return len(js) == 1 })
	second := clock.advanceToNextTimer(t)
	waitJobs(t, cl, "only the second job", func(js []*api.Job) bool {
		return len(js) == 1 && js[0].Name == CronJobRunName("latest", second)
	})
}

func TestCronJobStartingDeadlineSkipsMissedRuns(t *testing.T) {
	cl, clock := startCronJobController(t)
	cj := testCronJob("strict", "0 * * * *")
	cj.Spec.StartingDeadlineSeconds = jobPtr(int64(60))
	cj.Spec.Suspend = jobPtr(true)
	created, err := cl.Create(context.Background(), cj)
	if err != nil {
		t.Fatal(err)
	}
	// Suspended, the controller sets no timer; resumed at half past, three hours on,
	// the missed runs are all past the deadline.
	now := clock.Now()
	halfPast := now.Truncate(time.Hour).Add(3*time.Hour + 30*time.Minute)
	clock.Advance(halfPast.Sub(now))
	setSuspend(t, cl, cronJobKind, created.GetObjectMeta().Name, false)
	next := clock.advanceToNextTimer(t)
	if next.Minute() != 0 {
		t.Fatalf("woke at %v", next)
	}
	got := waitJobs(t, cl, "one job", func(js []*api.Job) bool { return len(js) >= 1 })
	if len(got) != 1 || got[0].Name != CronJobRunName("strict", next) {
		t.Fatalf("jobs %v, want only %s", jobNames(got), CronJobRunName("strict", next))
	}
}

func TestCronJobTooManyMissedRunsRunsLatest(t *testing.T) {
	cl, clock := startCronJobController(t)
	cj := testCronJob("behind", "* * * * *")
	cj.Spec.Suspend = jobPtr(true)
	created, err := cl.Create(context.Background(), cj)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Hour)
	setSuspend(t, cl, cronJobKind, created.GetObjectMeta().Name, false)
	want := CronJobRunName("behind", clock.Now().Truncate(time.Minute))
	got := waitJobs(t, cl, "one job", func(js []*api.Job) bool { return len(js) >= 1 })
	if len(got) != 1 || got[0].Name != want {
		t.Fatalf("jobs %v, want only %s", jobNames(got), want)
	}
	jobWatchUntil(t, cl, jobEventKind, "TooManyMissedTimes event", func(es []*api.Event) bool {
		for _, e := range es {
			if e.Reason == "TooManyMissedTimes" && e.Type == api.EventWarning {
				return true
			}
		}
		return false
	})
}

func TestCronJobHistoryLimits(t *testing.T) {
	cl, clock := startCronJobController(t)
	cj := testCronJob("hist", "* * * * *")
	cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.FailedJobsHistoryLimit = jobPtr(int32(2)), jobPtr(int32(1))
	if _, err := cl.Create(context.Background(), cj); err != nil {
		t.Fatal(err)
	}
	var runs []string
	outcome := []string{api.JobComplete, api.JobFailed, api.JobComplete, api.JobFailed, api.JobComplete}
	for i, typ := range outcome {
		at := clock.advanceToNextTimer(t)
		name := CronJobRunName("hist", at)
		runs = append(runs, name)
		js := waitJobs(t, cl, name, func(js []*api.Job) bool {
			for _, j := range js {
				if j.Name == name {
					return true
				}
			}
			return false
		})
		for _, j := range js {
			if j.Name == name {
				setJobFinished(t, cl, j, typ)
			}
		}
		_ = i
	}
	// Kept: the last two successes (runs 2 and 4) and the last failure (run 3).
	want := []string{runs[2], runs[3], runs[4]}
	sort.Strings(want)
	waitJobs(t, cl, "pruned history "+strings.Join(want, ","), func(js []*api.Job) bool {
		return strings.Join(jobNames(js), ",") == strings.Join(want, ",")
	})
}

func TestCronJobSuspend(t *testing.T) {
	cl, clock := startCronJobController(t)
	cj := testCronJob("off", "* * * * *")
	cj.Spec.Suspend = jobPtr(true)
	if _, err := cl.Create(context.Background(), cj); err != nil {
		t.Fatal(err)
	}
	// A second CronJob, not suspended, shows the controller is past the first.
	if _, err := cl.Create(context.Background(), testCronJob("on", "* * * * *")); err != nil {
		t.Fatal(err)
	}
	at := clock.advanceToNextTimer(t)
	got := waitJobs(t, cl, "a job of on", func(js []*api.Job) bool { return len(js) >= 1 })
	if len(got) != 1 || got[0].Name != CronJobRunName("on", at) {
		t.Fatalf("jobs %v", jobNames(got))
	}
}
