package api

import (
	"strings"
	"testing"
)

func validJob() *Job {
	return &Job{
		TypeMeta:   TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: ObjectMeta{Name: "pi", Namespace: "default"},
		Spec: JobSpec{Template: PodTemplateSpec{Spec: PodSpec{
			Containers: []Container{{Name: "pi", Image: "perl"}},
		}}},
	}
}

func TestJobDefaults(t *testing.T) {
	j := validJob()
	Default(j)
	s := j.Spec
	if *s.Parallelism != 1 || *s.Completions != 1 || *s.BackoffLimit != 6 || *s.Suspend {
		t.Errorf("defaults: parallelism %d completions %d backoffLimit %d suspend %v", *s.Parallelism, *s.Completions, *s.BackoffLimit, *s.Suspend)
	}
	if s.Template.Spec.RestartPolicy != RestartNever {
		t.Errorf("restartPolicy %q, want Never", s.Template.Spec.RestartPolicy)
	}
	// A work queue: parallelism without completions keeps completions nil.
	j = validJob()
	p := int32(3)
	j.Spec.Parallelism = &p
	Default(j)
	if j.Spec.Completions != nil {
		t.Errorf("completions = %d, want nil", *j.Spec.Completions)
	}
	if err := Validate(j); err != nil {
		t.Error(err)
	}
}

func TestBatchValidation(t *testing.T) {
	neg := int32(-1)
	zero := int64(0)
	tz := "Mars/Olympus"
	tests := []struct {
		name string
		obj  func() Object
		want string
	}{
		{"restartPolicy Always", func() Object {
			j := validJob()
			j.Spec.Template.Spec.RestartPolicy = RestartAlways
			return j
		}, `spec.template.spec.restartPolicy: "Always" must be Never or OnFailure`},
		{"negative parallelism", func() Object { j := validJob(); j.Spec.Parallelism = &neg; return j }, "spec.parallelism: -1 must be greater than or equal to 0"},
		{"zero deadline", func() Object { j := validJob(); j.Spec.ActiveDeadlineSeconds = &zero; return j }, "spec.activeDeadlineSeconds: 0 must be greater than 0"},
		{"selector mismatch", func() Object {
			j := validJob()
			j.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"app": "x"}}
			return j
		}, "spec.template.metadata.labels: do not match the selector"},
		{"no image", func() Object { j := validJob(); j.Spec.Template.Spec.Containers[0].Image = ""; return j }, "spec.template.spec.containers[0].image: required"},
		{"bad schedule", func() Object { c := validCronJob(); c.Spec.Schedule = "* * *"; return c }, `spec.schedule: "* * *" has 3 fields, want 5`},
		{"no schedule", func() Object { c := validCronJob(); c.Spec.Schedule = ""; return c }, "spec.schedule: required"},
		{"bad policy", func() Object { c := validCronJob(); c.Spec.ConcurrencyPolicy = "Sometimes"; return c }, `spec.concurrencyPolicy: "Sometimes" must be one of Allow, Forbid, Replace`},
		{"bad zone", func() Object { c := validCronJob(); c.Spec.TimeZone = &tz; return c }, `spec.timeZone: "Mars/Olympus" is not a known IANA time zone`},
		{"bad job template", func() Object {
			c := validCronJob()
			c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = RestartAlways
			return c
		}, "spec.jobTemplate.spec.template.spec.restartPolicy"},
		{"long name", func() Object { c := validCronJob(); c.Name = strings.Repeat("a", 53); return c }, "longer than 52 characters"},
		{"event without reason", func() Object { e := validEvent(); e.Reason = ""; return e }, "reason: required"},
		{"event bad type", func() Object { e := validEvent(); e.Type = "Error"; return e }, `type: "Error" must be one of Normal, Warning`},
	}
	for _, tt := range tests {
		o := tt.obj()
		Default(o)
		err := Validate(o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
	for _, o := range []Object{validJob(), validCronJob(), validEvent()} {
		Default(o)
		if err := Validate(o); err != nil {
			t.Errorf("%T: %v", o, err)
		}
	}
}

func validCronJob() *CronJob {
	return &CronJob{
		TypeMeta:   TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: ObjectMeta{Name: "hello", Namespace: "default"},
		Spec:       CronJobSpec{Schedule: "*/5 * * * *", JobTemplate: JobTemplateSpec{Spec: validJob().Spec}},
	}
}

func validEvent() *Event {
	return &Event{
		TypeMeta:       TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta:     ObjectMeta{Name: "pi.17a2b3c4d5e6f", Namespace: "default"},
		InvolvedObject: ObjectReference{Kind: "Job", Namespace: "default", Name: "pi", UID: "u1"},
		Reason:         "Completed",
	}
}

func TestCronJobDefaultsAndKinds(t *testing.T) {
	c := validCronJob()
	Default(c)
	if c.Spec.ConcurrencyPolicy != ConcurrencyAllow || *c.Spec.SuccessfulJobsHistoryLimit != 3 || *c.Spec.FailedJobsHistoryLimit != 1 {
		t.Errorf("defaults %+v", c.Spec)
	}
	for _, name := range []string{"cj", "cronjobs", "jobs", "ev", "events"} {
		if _, ok := LookupKind(name); !ok {
			t.Errorf("kind %q not registered", name)
		}
	}
	if _, err := KindFor("batch/v1beta1", "CronJob"); err != nil {
		t.Error(err)
	}
	f := FieldsOf(validEvent())
	if f["involvedObject.name"] != "pi" || f["involvedObject.kind"] != "Job" || f["involvedObject.uid"] != "u1" || f["reason"] != "Completed" {
		t.Errorf("event fields %v", f)
	}
}
