package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// readUntilCaughtUp calls Next until it reports caught up and returns the events read
// and the channel to wait on.
func readUntilCaughtUp(t *testing.T, w *Watcher) ([]Event, <-chan struct{}) {
	t.Helper()
	var all []Event
	for {
		evs, advanced, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...) // Events are values; their Object stays valid
		if advanced != nil {
			return all, advanced
		}
	}
}

// A Watcher read in the caller's goroutine sees the history from the log and then
// from the ring, waits for the next write on the channel Next returns, and ends with
// ErrClosed when the store closes.
func TestFollow(t *testing.T) {
	s, _ := openTest(t, Options{ringSize: 8})
	for i := range 40 {
		mustCreate(t, s, pods, newPod("default", fmt.Sprint("p", i)))
	}
	mustCreate(t, s, namespaces, newNamespace("other-kind")) // not a pod: skipped
	w, err := s.Follow(pods, WatchOptions{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	evs, advanced := readUntilCaughtUp(t, w)
	if len(evs) != 39 {
		t.Fatalf("read %d events, want revisions 2..40", len(evs))
	}
	for i, ev := range evs {
		if ev.Revision != uint64(i+2) || ev.Key != fmt.Sprint("default/p", i+1) {
			t.Fatalf("event %d: revision %d key %s", i, ev.Revision, ev.Key)
		}
	}
	select {
	case <-advanced:
		t.Fatal("advanced closed with no write since")
	default:
	}

	mustCreate(t, s, pods, newPod("default", "live"))
	select {
	case <-advanced:
	case <-time.After(10 * time.Second):
		t.Fatal("advanced not closed by a write")
	}
	if evs, _ := readUntilCaughtUp(t, w); len(evs) != 1 || evs[0].Key != "default/live" {
		t.Fatalf("after the write: %+v", evs)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Closing():
	default:
		t.Fatal("Closing not closed after Close")
	}
	if _, err := s.Follow(pods, WatchOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Follow after Close: %v, want ErrClosed", err)
	}
}

// A Watcher too far behind the compacted history gets ErrGone from Next.
func TestFollowFallsBehind(t *testing.T) {
	s, _ := openTest(t, Options{EventHistory: 10, ringSize: 16})
	w, err := s.Follow(pods, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range fetchMax + 100 {
		mustCreate(t, s, pods, newPod("default", fmt.Sprint("p", i)))
	}
	for {
		evs, advanced, err := w.Next()
		if errors.Is(err, ErrGone) {
			return
		}
		if err != nil || advanced != nil {
			t.Fatalf("Next: %d events, caught up %v, error %v; want ErrGone", len(evs), advanced != nil, err)
		}
	}
}
