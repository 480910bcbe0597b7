package controller

import (
	"context"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/events"
)

func TestRecorderAggregatesRepeats(t *testing.T) {
	cl := newTestAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := newManualClock(time.Now().Truncate(time.Second))
	r := NewRecorder(cl, "test")
	r.Clock = clock
	go r.Run(ctx)
	job := testJob("subject")
	job.UID = "u-1"
	node := &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1", UID: "u-2"}}

	for i := 0; i < 3; i++ {
		r.Event(job, api.EventWarning, "BackOff", "pod %s failed", "p1")
	}
	r.Event(job, api.EventNormal, "SuccessfulCreate", "Created pod: p2")
	r.Event(node, api.EventNormal, "NodeReady", "ready") // cluster-scoped: lands in default
	got := jobWatchUntil(t, cl, jobEventKind, "3 events, BackOff counted 3", func(es []*api.Event) bool {
		if len(es) != 3 {
			return false
		}
		for _, e := range es {
			if e.Reason == "BackOff" && e.Count == 3 {
				return true
			}
		}
		return false
	})
	for _, e := range got {
		switch e.Reason {
		case "BackOff":
			if e.Type != api.EventWarning || e.Message != "pod p1 failed" || e.InvolvedObject.Kind != "Job" || e.InvolvedObject.UID != "u-1" ||
				e.Source.Component != "test" || e.FirstTimestamp == nil || e.LastTimestamp == nil {
				t.Errorf("event %+v", e)
			}
		case "NodeReady":
			if e.Namespace != "default" || e.InvolvedObject.Kind != "Node" || e.InvolvedObject.Namespace != "" {
				t.Errorf("node event %+v", e)
			}
		}
	}

	// Beyond the ten-minute window, a repeat is a new event.
	clock.Advance(11 * time.Minute)
	r.Event(job, api.EventWarning, "BackOff", "pod %s failed", "p1")
	jobWatchUntil(t, cl, jobEventKind, "a second BackOff event", func(es []*api.Event) bool {
		n := 0
		for _, e := range es {
			if e.Reason == "BackOff" {
				n++
			}
		}
		return n == 2
	})

	// Events last seen more than an hour ago are deleted.
	n, err := events.CleanupEvents(ctx, cl, time.Hour, clock.Now().Add(-11*time.Minute+65*time.Minute))
	if err != nil || n != 3 {
		t.Fatalf("cleanup deleted %d (%v), want the 3 events older than an hour", n, err)
	}
}
