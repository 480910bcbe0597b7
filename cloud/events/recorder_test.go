package events

import (
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
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
