package events

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/internal/clock"
)

func TestRecorderNeverBlocks(t *testing.T) {
	r := NewRecorder(nil, "test") // not running: the queue fills and then drops
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "x", Namespace: "default"}}
	done := make(chan struct{})
	go func() {
		for i := 0; i < 3*QueueSize; i++ {
			r.Event(pod, api.EventNormal, "R", "m")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Event blocked with a full queue")
	}
}

func TestNilRecorderRecordsNothing(t *testing.T) {
	var r *Recorder
	r.Event(&api.Pod{}, api.EventNormal, "R", "m")
}

// TestRecorderReportsDropsOncePerWindow fills the queue of a recorder whose writers
// do not run, and checks that what it drops is logged as one line per reason and
// window, timed by a fake clock.
func TestRecorderReportsDropsOncePerWindow(t *testing.T) {
	fake := clock.NewFake(time.Now())
	core, logs := observer.New(zapcore.WarnLevel)
	written := make(chan zapcore.Entry, 100)
	log := zap.New(zapcore.RegisterHooks(core, func(e zapcore.Entry) error {
		written <- e
		return nil
	}))
	r := NewRecorder(nil, "test")
	r.Clock, r.Logger = fake, log
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "x", Namespace: "default"}}

	const sent = 2 * QueueSize
	for i := range sent {
		r.Event(pod, api.EventNormal, "SuccessfulCreate", "Created pod: p-%d", i)
	}
	for range 5 {
		r.Event(pod, api.EventNormal, "Killing", "Stopping container c")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.drops.report(ctx, fake, DropReportWindow, log)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitLines := func(n int) []observer.LoggedEntry {
		t.Helper()
		for range n {
			select {
			case <-written:
			case <-time.After(10 * time.Second):
				t.Fatalf("%d of %d drop reports logged", logs.Len(), n)
			}
		}
		return logs.TakeAll()
	}
	<-fake.Pending()
	fake.Advance(DropReportWindow)
	got := waitLines(2)
	want := map[string]int64{"Killing": 5, "SuccessfulCreate": int64(sent - QueueSize)}
	if len(got) != len(want) {
		t.Fatalf("logged %d lines, want one per reason: %v", len(got), got)
	}
	for _, e := range got {
		f := e.ContextMap()
		reason, _ := f["reason"].(string)
		if f["dropped"] != want[reason] || f["window"] != DropReportWindow || e.Message != "event queue full; dropped events" {
			t.Errorf("logged %q %v, want reason %s dropped %d in %s", e.Message, f, reason, want[reason], DropReportWindow)
		}
	}

	// A window opens at its first drop and is reported only when it closes.
	r.Event(pod, api.EventNormal, "Killing", "Stopping container c")
	<-fake.Pending()
	fake.Advance(DropReportWindow - time.Second)
	r.Event(pod, api.EventNormal, "Killing", "Stopping container c")
	fake.Advance(time.Second)
	got = waitLines(1)
	if len(got) != 1 || got[0].ContextMap()["dropped"] != int64(2) {
		t.Fatalf("second window logged %v, want one line of 2 Killing events", got)
	}
	if logs.Len() != 0 || len(written) != 0 {
		t.Errorf("more lines than one per reason and window: %v", logs.All())
	}
}
