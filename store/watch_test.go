package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestWatchLive(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mustCreate(t, s, pods, newPod("default", "before")) // before the watch: not seen

	ch, err := s.Watch(ctx, pods, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := mustCreate(t, s, pods, newPod("default", "web")).(*api.Pod)
	mustCreate(t, s, namespaces, newNamespace("default")) // another kind: not seen
	p.Labels = map[string]string{"a": "b"}
	if _, err := s.Update(ctx, pods, p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, pods, "default", "web", ""); err != nil {
		t.Fatal(err)
	}

	want := []struct {
		typ EventType
		rev uint64
	}{{Added, 2}, {Modified, 4}, {Deleted, 5}}
	for _, w := range want {
		ev := next(t, ch)
		if ev.Err != nil || ev.Type != w.typ || ev.Revision != w.rev || ev.Key != "default/web" || ev.Resource != "pods" {
			t.Fatalf("event %+v, want %s at %d", ev, w.typ, w.rev)
		}
		obj, err := ev.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if obj.GetObjectMeta().ResourceVersion != fmt.Sprint(w.rev) {
			t.Fatalf("object resourceVersion %s in event %d", obj.GetObjectMeta().ResourceVersion, w.rev)
		}
	}
	cancel()
	if extra := closed(t, ch); len(extra) != 0 {
		t.Fatalf("unexpected events %+v", extra)
	}
}

func TestWatchReplayAndNamespace(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := t.Context()
	for i := range 5 {
		mustCreate(t, s, pods, newPod("a", fmt.Sprint("p", i)))
		mustCreate(t, s, pods, newPod("b", fmt.Sprint("p", i)))
	}
	ch, err := s.Watch(ctx, pods, WatchOptions{Namespace: "b", FromRevision: 4})
	if err != nil {
		t.Fatal(err)
	}
	// b's pods are at even revisions; after 4 come 6, 8, 10, then the live one.
	mustCreate(t, s, pods, newPod("a", "live"))
	mustCreate(t, s, pods, newPod("b", "live"))
	for _, rev := range []uint64{6, 8, 10, 12} {
		if ev := next(t, ch); ev.Revision != rev || ev.Key[:2] != "b/" {
			t.Fatalf("event %+v, want revision %d in b", ev, rev)
		}
	}
}

// TestWatchFromLog makes the ring too small to hold the history, so a watcher must
// read the event log and then switch to the ring.
func TestWatchFromLog(t *testing.T) {
	s, _ := openTest(t, Options{ringSize: 8})
	for i := range 100 {
		mustCreate(t, s, pods, newPod("default", fmt.Sprint("p", i)))
	}
	ch, err := s.Watch(t.Context(), pods, WatchOptions{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	for rev := uint64(2); rev <= 100; rev++ {
		if ev := next(t, ch); ev.Revision != rev {
			t.Fatalf("event %+v, want revision %d", ev, rev)
		}
	}
	mustCreate(t, s, pods, newPod("default", "live"))
	if ev := next(t, ch); ev.Revision != 101 {
		t.Fatalf("live event %+v", ev)
	}
}

func TestWatchResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/cloudbox.db"
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, pods, newPod("default", "a"))
	resumeFrom := s.Revision()
	mustCreate(t, s, pods, newPod("default", "b"))
	if _, err := s.Delete(context.Background(), pods, "default", "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path, Options{})
	if s.Revision() != 3 {
		t.Fatalf("revision after reopen = %d, want 3", s.Revision())
	}
	ch, err := s.Watch(t.Context(), pods, WatchOptions{FromRevision: resumeFrom})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, pods, newPod("default", "c"))
	for _, w := range []struct {
		typ EventType
		key string
	}{{Added, "default/b"}, {Deleted, "default/a"}, {Added, "default/c"}} {
		if ev := next(t, ch); ev.Type != w.typ || ev.Key != w.key {
			t.Fatalf("event %+v, want %s %s", ev, w.typ, w.key)
		}
	}
}

func TestWatchCompacted(t *testing.T) {
	s, path := openTest(t, Options{EventHistory: 10})
	for i := range 50 {
		mustCreate(t, s, pods, newPod("default", fmt.Sprint("p", i)))
	}
	// The writer compacts after it has answered the batch, so the last compaction
	// may still be under way: the log holds 10 to 12 events.
	st := s.Stats()
	if st.CompactedRevision < 50-12 || st.CompactedRevision > 50-10 {
		t.Fatalf("compacted revision = %d, want 38..40", st.CompactedRevision)
	}
	if _, err := s.Watch(t.Context(), pods, WatchOptions{FromRevision: 5}); !errors.Is(err, ErrGone) {
		t.Fatalf("Watch from a compacted revision = %v", err)
	}
	// From the compacted revision itself everything after is still there.
	ch, err := s.Watch(t.Context(), pods, WatchOptions{FromRevision: st.CompactedRevision})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Revision != st.CompactedRevision+1 {
		t.Fatalf("first event %+v", ev)
	}

	// The compacted revision survives a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path, Options{EventHistory: 10})
	if _, err := s.Watch(t.Context(), pods, WatchOptions{FromRevision: 5}); !errors.Is(err, ErrGone) {
		t.Fatalf("Watch after reopen = %v", err)
	}
}

// TestWatchFallsBehind lets a watcher stop reading while the log is compacted past
// it: it gets the events it had buffered, then ErrGone, then the channel closes. The
// writer never waits for it.
func TestWatchFallsBehind(t *testing.T) {
	s, _ := openTest(t, Options{EventHistory: 10, ringSize: 16})
	ch, err := s.Watch(t.Context(), pods, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const n = watchBuffer + fetchMax + 100
	for i := range n {
		mustCreate(t, s, pods, newPod("default", fmt.Sprint("p", i)))
	}
	evs := closed(t, ch)
	if len(evs) == 0 {
		t.Fatal("channel closed without ErrGone")
	}
	last := evs[len(evs)-1]
	if !errors.Is(last.Err, ErrGone) {
		t.Fatalf("last event %+v, want ErrGone", last)
	}
	for i, ev := range evs[:len(evs)-1] {
		if ev.Err != nil || ev.Revision != uint64(i+1) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
}

func TestWatchEndsOnClose(t *testing.T) {
	s, _ := openTest(t, Options{})
	ch, err := s.Watch(context.Background(), pods, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed(t, ch)
}

func TestWatchBadInput(t *testing.T) {
	s, _ := openTest(t, Options{})
	if _, err := s.Watch(t.Context(), namespaces, WatchOptions{Namespace: "a"}); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("namespace on a cluster-scoped kind: %v", err)
	}
}
