package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func init() {
	addTable(tableOf[*api.Job]{
		headers: []string{"NAME", "COMPLETIONS", "DURATION", "AGE"},
		row: func(j *api.Job) []string {
			want := "1"
			if j.Spec.Completions != nil {
				want = fmt.Sprint(*j.Spec.Completions)
			} else if j.Spec.Parallelism != nil && *j.Spec.Parallelism > 1 {
				want = fmt.Sprintf("1 of %d", *j.Spec.Parallelism)
			}
			return []string{j.Name, fmt.Sprintf("%d/%s", j.Status.Succeeded, want), jobDuration(j), age(j.CreationTimestamp)}
		},
		wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"},
		wideRow: func(j *api.Job) []string {
			var names, images []string
			for _, c := range j.Spec.Template.Spec.Containers {
				names, images = append(names, c.Name), append(images, c.Image)
			}
			sel := "<none>"
			if j.Spec.Selector != nil {
				if s, err := j.Spec.Selector.AsSelector(); err == nil {
					sel = s.String()
				}
			}
			return []string{strings.Join(names, ","), strings.Join(images, ","), sel}
		},
	})
	addTable(tableOf[*api.CronJob]{
		headers: []string{"NAME", "SCHEDULE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"},
		row: func(c *api.CronJob) []string {
			last := "<none>"
			if c.Status.LastScheduleTime != nil {
				last = age(c.Status.LastScheduleTime)
			}
			return []string{c.Name, c.Spec.Schedule, fmt.Sprint(c.IsSuspended()), fmt.Sprint(len(c.Status.Active)), last, age(c.CreationTimestamp)}
		},
	})
	addTable(tableOf[*api.Event]{
		headers: []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"},
		row: func(e *api.Event) []string {
			return []string{eventAge(e), e.Type, e.Reason, eventObject(e), e.Message}
		},
		wide: []string{"SOURCE", "FIRST SEEN", "COUNT", "NAME"},
		wideRow: func(e *api.Event) []string {
			return []string{orNone(e.Source.Component), age(e.FirstTimestamp), fmt.Sprint(e.Count), e.Name}
		},
	})
}

// jobDuration is how long the Job ran: to its completion, or to now.
func jobDuration(j *api.Job) string {
	if j.Status.StartTime == nil {
		return ""
	}
	end := time.Now()
	if j.Status.CompletionTime != nil {
		end = j.Status.CompletionTime.Time
	}
	return shortDuration(end.Sub(j.Status.StartTime.Time))
}

func eventAge(e *api.Event) string {
	last := e.LastTimestamp
	if last == nil {
		last = e.CreationTimestamp
	}
	return age(last)
}

// eventObject is "kind/name" in lower case, as kubectl shows it.
func eventObject(e *api.Event) string {
	return strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
}

// sortEvents orders a list of events by when they were last seen, oldest first,
// and reports whether objs were events at all (sortObjects leaves them alone then).
func sortEvents(objs []api.Object) bool {
	if len(objs) == 0 {
		return false
	}
	events := make([]*api.Event, len(objs))
	for i, o := range objs {
		e, ok := o.(*api.Event)
		if !ok {
			return false
		}
		events[i] = e
	}
	sortEventsByLastSeen(events)
	for i, e := range events {
		objs[i] = e
	}
	return true
}

// sortEventsByLastSeen orders events by when they were last seen, oldest first.
func sortEventsByLastSeen(events []*api.Event) {
	last := func(e *api.Event) time.Time {
		if e.LastTimestamp != nil {
			return e.LastTimestamp.Time
		}
		if e.CreationTimestamp != nil {
			return e.CreationTimestamp.Time
		}
		return time.Time{}
	}
	sort.SliceStable(events, func(i, j int) bool { return last(events[i]).Before(last(events[j])) })
}
