package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	// The zone database goes into the binary (~450 kB), so spec.timeZone (checked at
	// the API edge and read here, both in this binary) works on hosts without
	// /usr/share/zoneinfo, such as minimal containers and distroless images.
	_ "time/tzdata"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// maxMissedRuns is how many missed schedule times a CronJob without a starting
// deadline may have before the controller warns (it runs only the latest anyway).
const maxMissedRuns = 100

// CronJobController creates each CronJob's Jobs at its schedule times, named
// "<cronjob>-<scheduled time in Unix minutes>" so that a run is created once however
// often it is reconciled. It sleeps on its Clock until the next time; it never polls.
type CronJobController struct {
	base
	cronJobs client.Typed[*api.CronJob]
	jobs     client.Typed[*api.Job]
	waker    *waker
}

func init() {
	Register("cronjob", func(d Deps) Runner { return NewCronJobController(d) })
}

// NewCronJobController returns a controller reading CronJobs and Jobs from d's
// factory; it tells the time and wakes by d's clock.
func NewCronJobController(d Deps) *CronJobController {
	c := &CronJobController{base: newBase(d, "cronjob-controller", 1),
		cronJobs: client.For[*api.CronJob](d.Factory), jobs: client.For[*api.Job](d.Factory)}
	c.waker = newWaker(c.queue)
	c.cronJobs.AddHandler(onChange(func(cj *api.CronJob) { c.enqueue(cj) }))
	c.jobs.AddHandler(onChange(func(j *api.Job) { c.enqueueController("CronJob", j) }))
	return c
}

// Run reconciles until ctx is cancelled.
func (c *CronJobController) Run(ctx context.Context) { c.runQueue(ctx, c.sync) }

// CronJobRunName is the name of the Job a CronJob runs for the schedule time t.
func CronJobRunName(cronJob string, t time.Time) string {
	return fmt.Sprintf("%s-%d", cronJob, t.Unix()/60)
}

func (c *CronJobController) sync(ctx context.Context, key string) error {
	cur, ok := c.cronJobs.Get(key)
	if !ok {
		return nil
	}
	cj := api.DeepCopyOf(cur)
	if cj.DeletionTimestamp != nil {
		return nil
	}
	now := c.clock.Now()
	jobs := c.jobs.ControlledBy(cj.UID)
	sort.Slice(jobs, func(i, k int) bool { return jobs[i].Name < jobs[k].Name })
	orig := api.DeepCopyOf(cj)
	cj.Status.Active = nil
	var succeeded, failed []*api.Job
	for _, j := range jobs {
		switch kind, done := j.Finished(); {
		case !done:
			cj.Status.Active = append(cj.Status.Active, api.ObjectReference{APIVersion: "batch/v1", Kind: "Job", Namespace: j.Namespace, Name: j.Name, UID: j.UID})
		case kind == api.JobComplete:
			succeeded = append(succeeded, j)
			if ct := j.Status.CompletionTime; ct != nil && (cj.Status.LastSuccessfulTime == nil || ct.After(cj.Status.LastSuccessfulTime.Time)) {
				cj.Status.LastSuccessfulTime = ct
			}
		default:
			failed = append(failed, j)
		}
	}
	c.pruneHistory(ctx, cj, succeeded, cj.Spec.SuccessfulJobsHistoryLimit)
	c.pruneHistory(ctx, cj, failed, cj.Spec.FailedJobsHistoryLimit)

	sched, err := api.ParseCronSchedule(cj.Spec.Schedule)
	if err != nil {
		c.recorder.Event(cj, api.EventWarning, "UnparseableSchedule", "unparseable schedule %q: %v", cj.Spec.Schedule, err)
		return c.writeStatus(ctx, orig, cj)
	}
	loc, err := cj.Location()
	if err != nil {
		c.recorder.Event(cj, api.EventWarning, "UnknownTimeZone", "unknown time zone %q: %v", *cj.Spec.TimeZone, err)
		return c.writeStatus(ctx, orig, cj)
	}
	if cj.IsSuspended() {
		return c.writeStatus(ctx, orig, cj)
	}

	// The runs due are those after the last one (or the CronJob's creation) up to now;
	// with a starting deadline, those older than it are lost.
	since := now
	if cj.CreationTimestamp != nil {
		since = cj.CreationTimestamp.Time
	}
	if cj.Status.LastScheduleTime != nil {
		since = cj.Status.LastScheduleTime.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		if earliest := now.Add(-time.Duration(*d) * time.Second); since.Before(earliest) {
			since = earliest.Add(-time.Second) // a run exactly at the deadline still counts
		}
	}
	var due time.Time
	missed := 0
	for t := sched.Next(since.In(loc)); !t.IsZero() && !t.After(now); t = sched.Next(t) {
		due = t
		missed++
		if missed > maxMissedRuns && cj.Spec.StartingDeadlineSeconds == nil {
			// Counting on would take long for a CronJob left alone for years; the latest
			// run is the one before now.
			due = latestBefore(sched, now.In(loc), t)
			break
		}
	}
	if missed > maxMissedRuns {
		c.recorder.Event(cj, api.EventWarning, "TooManyMissedTimes",
			"more than %d schedule times were missed; running only the latest, %s (set startingDeadlineSeconds to bound the catch-up)", maxMissedRuns, due.UTC().Format(time.RFC3339))
	}

	if !due.IsZero() {
		if err := c.run(ctx, cj, due); err != nil {
			return err
		}
	}
	if next := sched.Next(now.In(loc)); !next.IsZero() {
		c.waker.at(key, next)
	}
	return c.writeStatus(ctx, orig, cj)
}

// run starts the Job for schedule time due, following the concurrency policy; it
// leaves lastScheduleTime alone when Forbid makes the run wait for the active one.
func (c *CronJobController) run(ctx context.Context, cj *api.CronJob, due time.Time) error {
	name := CronJobRunName(cj.Name, due)
	if _, ok := c.jobs.GetByName(cj.Namespace, name); ok {
		cj.Status.LastScheduleTime = api.NewTime(due)
		return nil
	}
	if len(cj.Status.Active) > 0 {
		switch cj.Spec.ConcurrencyPolicy {
		case api.ConcurrencyForbid:
			c.recorder.Event(cj, api.EventNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return nil
		case api.ConcurrencyReplace:
			for _, ref := range cj.Status.Active {
				if _, err := c.client.Delete(ctx, api.KindOfType[*api.Job](), ref.Namespace, ref.Name); err != nil && !client.IsNotFound(err) {
					return err
				}
				c.recorder.Event(cj, api.EventNormal, "SuccessfulDelete", "Deleted job %s", ref.Name)
			}
			cj.Status.Active = nil
		}
	}
	job := cronJobJob(cj, name)
	job.Annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] = due.UTC().Format(time.RFC3339)
	created, err := c.client.Create(ctx, job)
	switch {
	case client.IsAlreadyExists(err):
	case err != nil:
		c.recorder.Event(cj, api.EventWarning, "FailedCreate", "Error creating job: %v", err)
		return err
	default:
		m := created.GetObjectMeta()
		cj.Status.Active = append(cj.Status.Active, api.ObjectReference{APIVersion: "batch/v1", Kind: "Job", Namespace: m.Namespace, Name: m.Name, UID: m.UID})
		c.recorder.Event(cj, api.EventNormal, "SuccessfulCreate", "Created job %s", name)
	}
	cj.Status.LastScheduleTime = api.NewTime(due)
	return nil
}

// CronJobJob makes the Job a CronJob's template describes, named name and owned by
// the CronJob; `create job --from cronjob/NAME` uses it too.
func CronJobJob(cj *api.CronJob, name string) *api.Job { return cronJobJob(cj, name) }

func cronJobJob(cj *api.CronJob, name string) *api.Job {
	t := api.DeepCopyOf(&api.Job{ObjectMeta: cj.Spec.JobTemplate.Metadata, Spec: cj.Spec.JobTemplate.Spec})
	j := &api.Job{TypeMeta: api.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, Spec: t.Spec}
	j.Name, j.Namespace = name, cj.Namespace
	j.Labels, j.Annotations = t.Labels, t.Annotations
	if j.Annotations == nil {
		j.Annotations = map[string]string{}
	}
	j.OwnerReferences = []api.OwnerReference{OwnerRef(cj)}
	return j
}

// latestBefore returns the last schedule time at or before now, starting the search
// from from (a schedule time before now).
func latestBefore(s *api.CronSchedule, now, from time.Time) time.Time {
	// Step back in growing windows until one holds a time, then walk it forward.
	for back := time.Hour; back < 10*366*24*time.Hour; back *= 2 {
		start := now.Add(-back)
		if start.Before(from) {
			start = from
		}
		var last time.Time
		for t := s.Next(start); !t.IsZero() && !t.After(now); t = s.Next(t) {
			last = t
		}
		if !last.IsZero() {
			return last
		}
	}
	return from
}

func (c *CronJobController) pruneHistory(ctx context.Context, cj *api.CronJob, jobs []*api.Job, limit *int32) {
	if limit == nil || len(jobs) <= int(*limit) {
		return
	}
	sort.Slice(jobs, func(i, k int) bool { return jobStart(jobs[i]).Before(jobStart(jobs[k])) })
	for _, j := range jobs[:len(jobs)-int(*limit)] {
		if _, err := c.client.Delete(ctx, api.KindOfType[*api.Job](), j.Namespace, j.Name); err != nil && !client.IsNotFound(err) {
			c.log.Warn("deleting old job failed", zap.String("job", j.Key()), zap.Error(err))
			continue
		}
		c.recorder.Event(cj, api.EventNormal, "SuccessfulDelete", "Deleted job %s", j.Name)
	}
}

// jobStart orders a CronJob's Jobs: by the schedule time in their name's annotation,
// else by creation.
func jobStart(j *api.Job) time.Time {
	if s, ok := j.Annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"]; ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
	}
	if j.CreationTimestamp != nil {
		return j.CreationTimestamp.Time
	}
	return time.Time{}
}

func (c *CronJobController) writeStatus(ctx context.Context, orig, cj *api.CronJob) error {
	a, _ := json.Marshal(orig.Status)
	b, _ := json.Marshal(cj.Status)
	if bytes.Equal(a, b) {
		return nil
	}
	_, err := c.client.UpdateStatus(ctx, cj)
	return err
}
