package events

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// TestWriteQueueWritesKeysAtOnceAndRepeatsInOrder holds every write until writers
// of them are in flight: that many distinct keys are written at once, never more,
// and the repeats of one key wait for the write before them.
func TestWriteQueueWritesKeysAtOnceAndRepeatsInOrder(t *testing.T) {
	q := newWriteQueue()
	started := make(chan queued, 100)
	release := make(chan struct{})
	var mu sync.Mutex
	inFlight, most := 0, 0
	var order []string // the messages of key-0, in the order written
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		q.run(ctx, func(_ context.Context, it queued) {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			if it.key == "key-0" {
				order = append(order, it.e.Message)
			}
			mu.Unlock()
			started <- it
			<-release
			mu.Lock()
			inFlight--
			mu.Unlock()
		})
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()

	push := func(key, msg string) {
		if !q.push(queued{&api.Event{Message: msg}, key}) {
			t.Fatalf("queue full at %s %s", key, msg)
		}
	}
	for i := range writers + 2 {
		push(fmt.Sprintf("key-%d", i), "first")
	}
	push("key-0", "second")
	push("key-0", "third")
	seen := map[string]bool{}
	for range writers {
		select {
		case it := <-started:
			if seen[it.key] {
				t.Fatalf("%s written twice at once", it.key)
			}
			seen[it.key] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("%d writes started, want %d at once", len(seen), writers)
		}
	}
	close(release)
	for range 4 { // the two keys beyond writers, and key-0's repeats
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the queued writes did not all start")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most > writers {
		t.Errorf("%d writes at once, want at most %d", most, writers)
	}
	if fmt.Sprint(order) != "[first second third]" {
		t.Errorf("key-0 written in the order %v, want [first second third]", order)
	}
}

func TestWriteQueueRefusesBeyondQueueSize(t *testing.T) {
	q := newWriteQueue()
	for i := range QueueSize {
		if !q.push(queued{&api.Event{}, fmt.Sprint(i)}) {
			t.Fatalf("refused event %d of %d", i, QueueSize)
		}
	}
	if q.push(queued{&api.Event{}, "one more"}) {
		t.Fatal("accepted an event beyond QueueSize")
	}
	q.written()
	if !q.push(queued{&api.Event{}, "after a write"}) {
		t.Fatal("refused an event after one was written")
	}
}
