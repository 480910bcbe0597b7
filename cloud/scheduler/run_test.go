package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// startRun runs s.Run until the test ends and returns the pending channel and a channel
// closed when Run returns.
func startRun(t *testing.T, s *Scheduler) (chan<- *api.Pod, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pending := make(chan *api.Pod)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, pending)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return pending, cancel, done
}

func TestRunBindsPendingPods(t *testing.T) {
	b := newBinder()
	s := New(Config{View: newView(node("a")), Binder: b})
	pending, _, _ := startRun(t, s)
	pending <- pod("p1", "", "")
	pending <- pod("p2", "", "", func(p *api.Pod) { p.Spec.NodeName = "a" }) // skipped
	pending <- pod("p3", "", "")
	for _, want := range []string{"p1", "p3"} {
		if got := waitFor(t, b.bound, want+" bound"); got != (binding{want, "a"}) {
			t.Fatalf("bound %v, want %s on a", got, want)
		}
	}
}

func TestRunRetriesAfterNodesChanged(t *testing.T) {
	b := newBinder()
	v := newView(node("a", notReady))
	// The backoff is far longer than the test: only NodesChanged can bring the retry.
	s := New(Config{View: v, Binder: b, InitialBackoff: time.Hour})
	pending, _, _ := startRun(t, s)

	pending <- pod("p", "", "")
	u := waitFor(t, b.unschedulable, "p unschedulable")
	if u.message != "0/1 nodes are available: 1 node(s) were not ready." {
		t.Fatalf("unschedulable message %q", u.message)
	}
	v.setNodes(node("a", notReady), node("b"))
	s.NodesChanged()
	if got := waitFor(t, b.bound, "p bound after NodesChanged"); got != (binding{"p", "b"}) {
		t.Fatalf("bound %v, want p on b", got)
	}
}

func TestRunRetriesAfterBackoff(t *testing.T) {
	b := newBinder()
	v := newView(node("a", cordoned))
	s := New(Config{View: v, Binder: b, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	pending, _, _ := startRun(t, s)
	pending <- pod("p", "", "")
	waitFor(t, b.unschedulable, "p unschedulable")
	v.setNodes(node("a")) // uncordoned, and nobody calls NodesChanged
	if got := waitFor(t, b.bound, "p bound after its backoff"); got != (binding{"p", "a"}) {
		t.Fatalf("bound %v, want p on a", got)
	}
}

func TestRunNewerVersionReplacesQueued(t *testing.T) {
	b := newBinder()
	v := newView(node("a", label("disk", "hdd")))
	s := New(Config{View: v, Binder: b, InitialBackoff: time.Hour})
	pending, _, _ := startRun(t, s)

	pending <- pod("p", "", "", selector("disk", "ssd"))
	waitFor(t, b.unschedulable, "p unschedulable")
	// The user drops the selector: the new version is tried at once and replaces the
	// queued one.
	pending <- pod("p", "", "")
	waitFor(t, b.bound, "p bound")
	if n := s.queue.len(); n != 0 {
		t.Fatalf("%d pods still queued after p was bound", n)
	}
}

func TestRunForgetsDeletedPods(t *testing.T) {
	b := newBinder()
	v := newView(node("a", notReady))
	s := New(Config{View: v, Binder: b, InitialBackoff: time.Hour})
	pending, _, _ := startRun(t, s)

	p := pod("p", "", "")
	pending <- p
	waitFor(t, b.unschedulable, "p unschedulable")
	s.PodDeleted(p)
	v.setNodes(node("a"))
	s.NodesChanged()
	// A stale copy still on its way, then a barrier: pending is one ordered channel.
	pending <- p
	pending <- pod("barrier", "", "")
	if got := waitFor(t, b.bound, "barrier bound"); got.pod != "barrier" {
		t.Fatalf("bound %v after it was deleted", got)
	}
	if n := s.queue.len(); n != 0 {
		t.Fatalf("%d pods queued, want none", n)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	b := newBinder()
	s := New(Config{View: newView(node("a", notReady)), Binder: b, InitialBackoff: time.Millisecond})
	pending, cancel, done := startRun(t, s)
	pending <- pod("p", "", "") // keeps a retry timer armed
	waitFor(t, b.unschedulable, "p unschedulable")
	cancel()
	waitFor(t, done, "Run to return")
}

func TestRunKeepsRetryingWhenPendingCloses(t *testing.T) {
	b := newBinder()
	v := newView(node("a", notReady))
	s := New(Config{View: v, Binder: b, InitialBackoff: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	pending := make(chan *api.Pod, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, pending)
	}()
	defer func() { cancel(); <-done }()
	pending <- pod("p", "", "")
	close(pending)
	waitFor(t, b.unschedulable, "p unschedulable")
	v.setNodes(node("a"))
	s.NodesChanged()
	waitFor(t, b.bound, "p bound")
}

func TestNodesFingerprintIgnoresHeartbeats(t *testing.T) {
	base := nodesFingerprint([]*api.Node{node("a"), node("b")})
	beat := node("a")
	beat.Status.Conditions[0].LastHeartbeatTime = api.Now()
	beat.ResourceVersion = "42"
	if nodesFingerprint([]*api.Node{node("b"), beat}) != base {
		t.Error("a heartbeat or the node order changed the fingerprint")
	}
	for name, n := range map[string]*api.Node{
		"not ready":   node("a", notReady),
		"cordoned":    node("a", cordoned),
		"tainted":     node("a", taint("k", "v", effectNoSchedule)),
		"labelled":    node("a", label("disk", "ssd")),
		"resized":     node("a", alloc("8", "8Gi", "110")),
		"pods capped": node("a", alloc("4", "8Gi", "")),
	} {
		if nodesFingerprint([]*api.Node{n, node("b")}) == base {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	if nodesFingerprint([]*api.Node{node("a")}) == base {
		t.Error("a removed node left the fingerprint unchanged")
	}
}

// gatedBinder is a Binder whose bindings wait until the test opens the gate, so a
// test sees which bindings are in flight at once; the first failFirst ones fail.
type gatedBinder struct {
	*recordingBinder
	entered chan string
	gate    chan struct{}

	mu        sync.Mutex
	failFirst int
}

func newGatedBinder() *gatedBinder {
	return &gatedBinder{recordingBinder: newBinder(), entered: make(chan string, 100), gate: make(chan struct{})}
}

func (b *gatedBinder) Bind(ctx context.Context, p *api.Pod, node string) error {
	b.entered <- p.Name
	select {
	case <-b.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	fail := b.failFirst > 0
	b.failFirst--
	b.mu.Unlock()
	if fail {
		return errors.New("connection refused")
	}
	return b.recordingBinder.Bind(ctx, p, node)
}

func TestRunKeepsParallelBindsInFlight(t *testing.T) {
	b := newGatedBinder()
	// Room for two pods: the third must see the two bindings in flight as taken.
	s := New(Config{View: newView(node("a", alloc("4", "8Gi", "2"))), Binder: b, ParallelBinds: 3})
	pending, _, _ := startRun(t, s)
	pending <- pod("p1", "", "")
	pending <- pod("p2", "", "")
	in := map[string]bool{waitFor(t, b.entered, "first binding"): true, waitFor(t, b.entered, "second binding"): true}
	if !in["p1"] || !in["p2"] {
		t.Fatalf("bindings in flight %v, want p1 and p2 at once", in)
	}
	pending <- pod("p3", "", "")
	u := waitFor(t, b.unschedulable, "p3 unschedulable")
	if u.pod != "p3" || !strings.Contains(u.message, "too many pods") {
		t.Fatalf("unschedulable %+v, want p3 for too many pods", u)
	}
	close(b.gate)
	got := map[string]bool{}
	for range 2 {
		r := waitFor(t, b.bound, "a binding to finish")
		got[r.pod] = r.node == "a"
	}
	if !got["p1"] || !got["p2"] {
		t.Fatalf("bound %v, want p1 and p2 on a", got)
	}
}

func TestRunRetriesFailedParallelBind(t *testing.T) {
	b := newGatedBinder()
	b.failFirst = 1
	close(b.gate)
	// The retry comes only from the backoff Run sets after the failed binding.
	s := New(Config{View: newView(node("a")), Binder: b, ParallelBinds: 4, InitialBackoff: time.Millisecond})
	pending, _, _ := startRun(t, s)
	pending <- pod("p", "", "")
	if got := waitFor(t, b.bound, "p bound on its second try"); got != (binding{"p", "a"}) {
		t.Fatalf("bound %v, want p on a", got)
	}
	if n := len(b.entered); n != 2 {
		t.Fatalf("%d bindings tried, want 2", n)
	}
}
