package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// JobController runs each Job's pods: it keeps spec.parallelism of them active until
// spec.completions have succeeded, recreates failed ones after a back-off, and marks
// the Job Complete or Failed (back-off limit, deadline). It deletes a finished Job
// after its ttlSecondsAfterFinished.
type JobController struct {
	base
	// BackoffBase is the delay before recreating a pod after the first failure; it
	// doubles with each failure up to BackoffMax. If zero, 10 s and 6 min.
	BackoffBase, BackoffMax time.Duration

	jobs client.Typed[*api.Job]
	pods client.Typed[*api.Pod]
	mu   sync.Mutex
	// failures remembers, per Job key, the failure count last seen and when it grew,
	// which the back-off is measured from.
	failures map[string]jobFailures
	waker    *waker
	// created holds, per Job key, the pods created but not yet seen by the pod
	// informer, so a sync that runs before the cache catches up does not create them
	// again.
	created map[string]map[string]time.Time
}

// createdPodTimeout is how long a created pod counts as active without the informer
// seeing it.
const createdPodTimeout = 30 * time.Second

type jobFailures struct {
	count int32
	at    time.Time
}

func init() {
	Register("job", func(d Deps) Runner { return NewJobController(d) })
}

// NewJobController returns a controller reading Jobs and pods from d's factory; its
// clock drives back-off, deadlines and TTLs.
func NewJobController(d Deps) *JobController {
	c := &JobController{base: newBase(d, "job-controller", 1), jobs: client.For[*api.Job](d.Factory), pods: client.For[*api.Pod](d.Factory),
		failures: map[string]jobFailures{}, created: map[string]map[string]time.Time{}}
	c.waker = newWaker(c.queue)
	c.jobs.AddHandler(client.TypedHandler[*api.Job]{
		OnAdd:    func(j *api.Job) { c.enqueue(j) },
		OnUpdate: func(_, j *api.Job) { c.enqueue(j) },
		OnDelete: func(j *api.Job) {
			c.mu.Lock()
			delete(c.failures, j.Key())
			delete(c.created, j.Key())
			c.mu.Unlock()
		}})
	c.pods.AddHandler(onChange(func(p *api.Pod) { c.enqueueController("Job", p) }))
	return c
}

// Run reconciles until ctx is cancelled.
func (c *JobController) Run(ctx context.Context) {
	if c.BackoffBase == 0 {
		c.BackoffBase = 10 * time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 6 * time.Minute
	}
	c.runQueue(ctx, c.sync)
}

func (c *JobController) backoff(failures int32) time.Duration {
	d := c.BackoffBase
	for i := int32(1); i < failures && d < c.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.BackoffMax)
}

func (c *JobController) sync(ctx context.Context, key string) error {
	cur, ok := c.jobs.Get(key)
	if !ok {
		return nil
	}
	job := api.DeepCopyOf(cur)
	if job.DeletionTimestamp != nil {
		return nil
	}
	if job.Spec.Selector == nil {
		// The selector names the Job's UID, which only exists once it is stored.
		job.Spec.Selector = &api.LabelSelector{MatchLabels: map[string]string{api.LabelControllerUID: job.UID}}
		if job.Spec.Template.Metadata.Labels == nil {
			job.Spec.Template.Metadata.Labels = map[string]string{}
		}
		job.Spec.Template.Metadata.Labels[api.LabelControllerUID] = job.UID
		job.Spec.Template.Metadata.Labels[api.LabelJobName] = job.Name
		_, err := c.client.Update(ctx, job)
		return err
	}
	now := c.clock.Now()
	var active, succeeded []*api.Pod
	var failed, restarts int32
	for _, p := range c.pods.ControlledBy(job.UID) {
		switch {
		case p.Status.Phase == api.PodSucceeded:
			succeeded = append(succeeded, p)
		case p.Status.Phase == api.PodFailed:
			failed++
		case p.DeletionTimestamp == nil:
			active = append(active, p)
			if p.Spec.RestartPolicy == api.RestartOnFailure {
				for _, cs := range p.Status.ContainerStatuses {
					restarts += cs.RestartCount
				}
			}
		}
	}
	st := &job.Status
	orig := api.DeepCopyOf(job)

	if kind, done := job.Finished(); done {
		if len(active) > 0 {
			c.deletePods(ctx, active)
		}
		return c.afterFinished(ctx, key, job, kind, now)
	}

	failures := failed + restarts
	c.mu.Lock()
	pending := int32(0)
	for name, at := range c.created[key] {
		if _, seen := c.pods.GetByName(job.Namespace, name); seen || now.Sub(at) > createdPodTimeout {
			delete(c.created[key], name)
		} else {
			pending++
		}
	}
	f := c.failures[key]
	if failures > f.count {
		f = jobFailures{count: failures, at: now}
		c.failures[key] = f
	}
	c.mu.Unlock()

	st.Active, st.Succeeded, st.Failed = int32(len(active))+pending, int32(len(succeeded)), failed
	suspended := job.IsSuspended()
	if !suspended && st.StartTime == nil {
		st.StartTime = api.NewTime(now)
	}
	setJobCondition(st, api.JobSuspended, suspended, "JobSuspended", "Job suspended", now)

	complete := false
	if job.Spec.Completions != nil {
		complete = st.Succeeded >= *job.Spec.Completions
	} else {
		complete = st.Succeeded > 0 && len(active) == 0
	}
	var failReason, failMsg string
	switch {
	case complete:
	case job.Spec.BackoffLimit != nil && failures > *job.Spec.BackoffLimit:
		failReason, failMsg = api.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"
	case !suspended && job.Spec.ActiveDeadlineSeconds != nil && st.StartTime != nil:
		deadline := st.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second)
		if !now.Before(deadline) {
			failReason, failMsg = api.JobReasonDeadlineExceeded, "Job was active longer than specified deadline"
		} else {
			c.waker.at(key, deadline)
		}
	}

	switch {
	case complete:
		c.deletePods(ctx, active)
		st.Active = 0
		setJobCondition(st, api.JobComplete, true, "", "", now)
		st.CompletionTime = api.NewTime(now)
		c.recorder.Event(job, api.EventNormal, "Completed", "Job completed")
	case failReason != "":
		c.deletePods(ctx, active)
		st.Active = 0
		setJobCondition(st, api.JobFailed, true, failReason, failMsg, now)
		c.recorder.Event(job, api.EventWarning, failReason, "%s", failMsg)
	case suspended:
		if len(active) > 0 {
			c.deletePods(ctx, active)
			st.Active = 0
			c.recorder.Event(job, api.EventNormal, "Suspended", "Job suspended")
		}
	default:
		if err := c.managePods(ctx, key, job, len(active)+int(pending), f, now); err != nil {
			return err
		}
	}
	if !jobStatusEqual(orig.Status, job.Status) {
		updated, err := client.UpdateStatus(ctx, c.client, job)
		if err != nil {
			return err
		}
		if kind, done := updated.Finished(); done {
			return c.afterFinished(ctx, key, updated, kind, now)
		}
	}
	return nil
}

// managePods creates the pods the Job still needs, once any back-off has passed.
func (c *JobController) managePods(ctx context.Context, key string, job *api.Job, active int, f jobFailures, now time.Time) error {
	st := &job.Status
	want := int32(1)
	if job.Spec.Parallelism != nil {
		want = *job.Spec.Parallelism
	}
	if job.Spec.Completions != nil {
		want = min(want, *job.Spec.Completions-st.Succeeded)
	} else if st.Succeeded > 0 {
		want = 0
	}
	n := want - int32(active)
	if n <= 0 {
		return nil
	}
	if f.count > 0 {
		if ready := f.at.Add(c.backoff(f.count)); now.Before(ready) {
			c.waker.at(key, ready)
			return nil
		}
	}
	for i := int32(0); i < n; i++ {
		p, err := client.Create(ctx, c.client, jobPod(job))
		if err != nil {
			c.recorder.Event(job, api.EventWarning, "FailedCreate", "Error creating pod: %v", err)
			return err
		}
		st.Active++
		c.mu.Lock()
		if c.created[key] == nil {
			c.created[key] = map[string]time.Time{}
		}
		c.created[key][p.Name] = now
		c.mu.Unlock()
		c.recorder.Event(job, api.EventNormal, "SuccessfulCreate", "Created pod: %s", p.Name)
	}
	return nil
}

// afterFinished deletes a finished Job whose time to live has passed, with its pods,
// or wakes when it will have.
func (c *JobController) afterFinished(ctx context.Context, key string, job *api.Job, kind string, now time.Time) error {
	ttl := job.Spec.TTLSecondsAfterFinished
	if ttl == nil {
		return nil
	}
	finished := now
	if cond := job.Status.Condition(kind); cond != nil && cond.LastTransitionTime != nil {
		finished = cond.LastTransitionTime.Time
	}
	if job.Status.CompletionTime != nil {
		finished = job.Status.CompletionTime.Time
	}
	expires := finished.Add(time.Duration(*ttl) * time.Second)
	if now.Before(expires) {
		c.waker.at(key, expires)
		return nil
	}
	c.deletePods(ctx, c.pods.ControlledBy(job.UID))
	if _, err := c.client.Delete(ctx, api.KindOfType[*api.Job](), job.Namespace, job.Name); err != nil && !client.IsNotFound(err) {
		return err
	}
	c.log.Info("deleted finished job after its ttl", zap.String("job", key))
	return nil
}

func (c *JobController) deletePods(ctx context.Context, pods []*api.Pod) {
	for _, p := range pods {
		if _, err := c.client.Delete(ctx, api.KindOfType[*api.Pod](), p.Namespace, p.Name); err != nil && !client.IsNotFound(err) {
			c.log.Warn("deleting job pod failed", zap.String("pod", p.Key()), zap.Error(err))
		}
	}
}

// jobPod makes a pod from the Job's template, owned by the Job.
func jobPod(job *api.Job) *api.Pod {
	t := api.DeepCopyOf(&api.Pod{ObjectMeta: job.Spec.Template.Metadata, Spec: job.Spec.Template.Spec})
	p := &api.Pod{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Pod"}, Spec: t.Spec}
	p.Namespace = job.Namespace
	p.GenerateName = job.Name + "-"
	p.Labels = t.Labels
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels[api.LabelControllerUID] = job.UID
	p.Labels[api.LabelJobName] = job.Name
	p.Annotations = t.Annotations
	p.OwnerReferences = []api.OwnerReference{OwnerRef(job)}
	return p
}

// setJobCondition sets condition t to True (on) or False, if it is there or on.
func setJobCondition(st *api.JobStatus, t string, on bool, reason, msg string, now time.Time) {
	status := api.ConditionFalse
	if on {
		status = api.ConditionTrue
	}
	c := st.Condition(t)
	if c == nil {
		if !on {
			return
		}
		st.Conditions = append(st.Conditions, api.JobCondition{Type: t, Status: status, Reason: reason, Message: msg,
			LastProbeTime: api.NewTime(now), LastTransitionTime: api.NewTime(now)})
		return
	}
	if c.Status != status {
		c.LastTransitionTime = api.NewTime(now)
	}
	c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, msg, api.NewTime(now)
}

func jobStatusEqual(a, b api.JobStatus) bool {
	return fmt.Sprintf("%+v", statusKey(a)) == fmt.Sprintf("%+v", statusKey(b))
}

// statusKey is what of a status matters for deciding to write it: probe times
// change on every look and are not worth a write.
func statusKey(s api.JobStatus) any {
	type cond struct{ T, S, R string }
	var cs []cond
	for _, c := range s.Conditions {
		cs = append(cs, cond{c.Type, c.Status, c.Reason})
	}
	return struct {
		C          []cond
		Start, End string
		A, S, F    int32
	}{cs, fmtTime(s.StartTime), fmtTime(s.CompletionTime), s.Active, s.Succeeded, s.Failed}
}

func fmtTime(t *api.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().String()
}
