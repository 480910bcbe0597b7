package api

import (
	"reflect"
	"strings"
	"time"
)

// PodTemplateSpec is the pod a controller stamps out: its metadata (labels, mostly)
// and its spec.
type PodTemplateSpec struct {
	Metadata ObjectMeta `json:"metadata,omitempty"`
	Spec     PodSpec    `json:"spec"`
}

// Job runs pods until a number of them succeed.
type Job struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       JobSpec   `json:"spec"`
	Status     JobStatus `json:"status,omitempty"`
}

// JobSpec says how many pods to run and when to give up.
type JobSpec struct {
	// Parallelism is how many pods may run at once; Default sets 1.
	Parallelism *int32 `json:"parallelism,omitempty"`
	// Completions is how many pods must succeed. Default sets 1 when Parallelism is
	// not set either; nil means any one success completes the Job (a work queue).
	Completions *int32 `json:"completions,omitempty"`
	// BackoffLimit is how many failed pods the Job tolerates; Default sets 6.
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`
	// ActiveDeadlineSeconds bounds the Job's run from its start time; nil means none.
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	// TTLSecondsAfterFinished deletes the Job that long after it finished; nil keeps it.
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// Selector finds the Job's pods. When nil the Job controller sets it to the
	// controller-uid label and adds that label to the template.
	Selector       *LabelSelector  `json:"selector,omitempty"`
	ManualSelector *bool           `json:"manualSelector,omitempty"`
	Template       PodTemplateSpec `json:"template"`
	// Suspend stops the Job: no new pods, active ones are deleted.
	Suspend *bool `json:"suspend,omitempty"`
}

// JobStatus counts the Job's pods and says whether it finished.
type JobStatus struct {
	Conditions     []JobCondition `json:"conditions,omitempty"`
	StartTime      *Time          `json:"startTime,omitempty"`
	CompletionTime *Time          `json:"completionTime,omitempty"`
	Active         int32          `json:"active,omitempty"`
	Succeeded      int32          `json:"succeeded,omitempty"`
	Failed         int32          `json:"failed,omitempty"`
}

// JobCondition is Complete, Failed or Suspended.
type JobCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	LastProbeTime      *Time  `json:"lastProbeTime,omitempty"`
	LastTransitionTime *Time  `json:"lastTransitionTime,omitempty"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
}

// Job condition types, reasons and labels.
const (
	JobComplete  = "Complete"
	JobFailed    = "Failed"
	JobSuspended = "Suspended"

	JobReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	JobReasonDeadlineExceeded     = "DeadlineExceeded"

	// LabelControllerUID and LabelJobName mark a Job's pods.
	LabelControllerUID = "controller-uid"
	LabelJobName       = "job-name"
)

// Condition returns the Job condition of type t, or nil.
func (s *JobStatus) Condition(t string) *JobCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// Finished reports whether the Job has a Complete or Failed condition that is True,
// and which.
func (j *Job) Finished() (string, bool) {
	for _, t := range []string{JobComplete, JobFailed} {
		if c := j.Status.Condition(t); c != nil && c.Status == ConditionTrue {
			return t, true
		}
	}
	return "", false
}

// IsSuspended reports whether spec.suspend is true.
func (j *Job) IsSuspended() bool { return j.Spec.Suspend != nil && *j.Spec.Suspend }

// CronJob creates Jobs on a schedule.
type CronJob struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       CronJobSpec   `json:"spec"`
	Status     CronJobStatus `json:"status,omitempty"`
}

// CronJobSpec is the schedule and the Job to run.
type CronJobSpec struct {
	// Schedule has five fields (minute hour day-of-month month day-of-week) or is a
	// macro such as @hourly; see ParseCronSchedule.
	Schedule string `json:"schedule"`
	// TimeZone is an IANA zone name the schedule is read in; nil means UTC.
	TimeZone *string `json:"timeZone,omitempty"`
	// StartingDeadlineSeconds skips a run that could not start that long after its
	// time; nil means no deadline.
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`
	// ConcurrencyPolicy is Allow (the default), Forbid or Replace.
	ConcurrencyPolicy string          `json:"concurrencyPolicy,omitempty"`
	Suspend           *bool           `json:"suspend,omitempty"`
	JobTemplate       JobTemplateSpec `json:"jobTemplate"`
	// SuccessfulJobsHistoryLimit and FailedJobsHistoryLimit are how many finished Jobs
	// to keep; Default sets 3 and 1.
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit,omitempty"`
	FailedJobsHistoryLimit     *int32 `json:"failedJobsHistoryLimit,omitempty"`
}

// JobTemplateSpec is the Job a CronJob creates.
type JobTemplateSpec struct {
	Metadata ObjectMeta `json:"metadata,omitempty"`
	Spec     JobSpec    `json:"spec"`
}

// CronJobStatus lists the running Jobs and when the CronJob last ran.
type CronJobStatus struct {
	Active             []ObjectReference `json:"active,omitempty"`
	LastScheduleTime   *Time             `json:"lastScheduleTime,omitempty"`
	LastSuccessfulTime *Time             `json:"lastSuccessfulTime,omitempty"`
}

// Concurrency policies.
const (
	ConcurrencyAllow   = "Allow"
	ConcurrencyForbid  = "Forbid"
	ConcurrencyReplace = "Replace"

	// AnnotationCronJobInstantiate marks a Job created by hand from a CronJob.
	AnnotationCronJobInstantiate = "cronjob.kubernetes.io/instantiate"
)

// IsSuspended reports whether spec.suspend is true.
func (c *CronJob) IsSuspended() bool { return c.Spec.Suspend != nil && *c.Spec.Suspend }

// Location returns the zone the schedule is read in: UTC unless spec.timeZone names
// another.
func (c *CronJob) Location() (*time.Location, error) {
	if c.Spec.TimeZone == nil || *c.Spec.TimeZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(*c.Spec.TimeZone)
}

func init() {
	Register(&KindInfo{Kind: "Job", Group: "batch", Version: "v1", Resource: "jobs", Singular: "job", Namespaced: true,
		New:            func() Object { return &Job{} },
		Default:        func(o Object) { defaultJobSpec(&o.(*Job).Spec) },
		Validate:       func(o Object) FieldErrors { return validateJobSpec("spec", &o.(*Job).Spec) },
		ValidateUpdate: validateJobUpdate,
	})
	Register(&KindInfo{Kind: "CronJob", Group: "batch", Version: "v1", Resource: "cronjobs", Singular: "cronjob", ShortNames: []string{"cj"}, Namespaced: true,
		New:      func() Object { return &CronJob{} },
		Default:  defaultCronJob,
		Validate: validateCronJob,
	})
}

func defaultJobSpec(s *JobSpec) {
	if s.Completions == nil && s.Parallelism == nil {
		one := int32(1)
		s.Completions = &one
	}
	if s.Parallelism == nil {
		one := int32(1)
		s.Parallelism = &one
	}
	if s.BackoffLimit == nil {
		six := int32(6)
		s.BackoffLimit = &six
	}
	if s.Suspend == nil {
		f := false
		s.Suspend = &f
	}
	// A Job's pods must end: a template that says nothing means Never, not the
	// Always a bare pod gets.
	if s.Template.Spec.RestartPolicy == "" {
		s.Template.Spec.RestartPolicy = RestartNever
	}
	p := &Pod{Spec: s.Template.Spec}
	defaultPod(p)
	s.Template.Spec = p.Spec
}

func defaultCronJob(o Object) {
	c := o.(*CronJob)
	if c.Spec.ConcurrencyPolicy == "" {
		c.Spec.ConcurrencyPolicy = ConcurrencyAllow
	}
	if c.Spec.SuccessfulJobsHistoryLimit == nil {
		n := int32(3)
		c.Spec.SuccessfulJobsHistoryLimit = &n
	}
	if c.Spec.FailedJobsHistoryLimit == nil {
		n := int32(1)
		c.Spec.FailedJobsHistoryLimit = &n
	}
	if c.Spec.Suspend == nil {
		f := false
		c.Spec.Suspend = &f
	}
	defaultJobSpec(&c.Spec.JobTemplate.Spec)
}

func validateJobSpec(p string, s *JobSpec) FieldErrors {
	var errs FieldErrors
	if s.Parallelism != nil {
		errs.check(child(p, "parallelism"), checkNonNegative(int64(*s.Parallelism)))
	}
	if s.Completions != nil {
		errs.check(child(p, "completions"), checkNonNegative(int64(*s.Completions)))
	}
	if s.BackoffLimit != nil {
		errs.check(child(p, "backoffLimit"), checkNonNegative(int64(*s.BackoffLimit)))
	}
	if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds <= 0 {
		errs.addf(child(p, "activeDeadlineSeconds"), "%d must be greater than 0", *s.ActiveDeadlineSeconds)
	}
	if s.TTLSecondsAfterFinished != nil {
		errs.check(child(p, "ttlSecondsAfterFinished"), checkNonNegative(int64(*s.TTLSecondsAfterFinished)))
	}
	tp := child(p, "template")
	errs = append(errs, validateLabels(child(tp, "metadata.labels"), s.Template.Metadata.Labels)...)
	if s.Selector != nil {
		errs = append(errs, ValidateLabelSelector(child(p, "selector"), s.Selector)...)
		if sel, err := s.Selector.AsSelector(); err == nil && !sel.Matches(s.Template.Metadata.Labels) {
			errs.addf(child(tp, "metadata.labels"), "do not match the selector %s", sel)
		}
	}
	switch rp := s.Template.Spec.RestartPolicy; rp {
	case RestartNever, RestartOnFailure:
	default:
		errs.addf(child(tp, "spec.restartPolicy"), "%q must be Never or OnFailure: a Job's pods must end", rp)
	}
	for _, e := range validatePod(&Pod{Spec: s.Template.Spec}) {
		if e.Field == "spec.restartPolicy" {
			continue // said above, in the Job's terms
		}
		errs.add(child(tp, e.Field), e.Reason)
	}
	return errs
}

func validateJobUpdate(oldObj, newObj Object) FieldErrors {
	o, n := oldObj.(*Job), newObj.(*Job)
	var errs FieldErrors
	// The controller sets the selector once; after that the pods depend on it.
	if o.Spec.Selector != nil && !reflect.DeepEqual(o.Spec.Selector, n.Spec.Selector) {
		errs.add("spec.selector", "field is immutable")
	}
	if !reflect.DeepEqual(o.Spec.Completions, n.Spec.Completions) {
		errs.add("spec.completions", "field is immutable")
	}
	return errs
}

func validateCronJob(o Object) FieldErrors {
	c := o.(*CronJob)
	var errs FieldErrors
	if c.Spec.Schedule == "" {
		errs.add("spec.schedule", "required")
	} else if _, err := ParseCronSchedule(c.Spec.Schedule); err != nil {
		errs.add("spec.schedule", err.Error())
	}
	if c.Spec.TimeZone != nil {
		tz := *c.Spec.TimeZone
		// Only zone names: an "Local" or a path would make the schedule depend on the host.
		if _, err := time.LoadLocation(tz); err != nil || tz == "Local" || strings.HasPrefix(tz, "/") {
			errs.addf("spec.timeZone", "%q is not a known IANA time zone such as \"Europe/Paris\"", tz)
		}
	}
	switch c.Spec.ConcurrencyPolicy {
	case ConcurrencyAllow, ConcurrencyForbid, ConcurrencyReplace:
	default:
		errs.add("spec.concurrencyPolicy", oneOf(c.Spec.ConcurrencyPolicy, ConcurrencyAllow, ConcurrencyForbid, ConcurrencyReplace))
	}
	if c.Spec.StartingDeadlineSeconds != nil {
		errs.check("spec.startingDeadlineSeconds", checkNonNegative(*c.Spec.StartingDeadlineSeconds))
	}
	if c.Spec.SuccessfulJobsHistoryLimit != nil {
		errs.check("spec.successfulJobsHistoryLimit", checkNonNegative(int64(*c.Spec.SuccessfulJobsHistoryLimit)))
	}
	if c.Spec.FailedJobsHistoryLimit != nil {
		errs.check("spec.failedJobsHistoryLimit", checkNonNegative(int64(*c.Spec.FailedJobsHistoryLimit)))
	}
	// Job names are "<cronjob>-<minutes>": 11 digits leave 52 characters of a label.
	if len(c.Name) > 52 {
		errs.addf("metadata.name", "%q is longer than 52 characters: the Jobs it creates append a time", c.Name)
	}
	errs = append(errs, validateLabels("spec.jobTemplate.metadata.labels", c.Spec.JobTemplate.Metadata.Labels)...)
	errs = append(errs, validateJobSpec("spec.jobTemplate.spec", &c.Spec.JobTemplate.Spec)...)
	return errs
}
