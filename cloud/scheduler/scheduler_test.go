package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestScheduleOneSkips(t *testing.T) {
	tests := []struct {
		name string
		pod  *api.Pod
		bind bool
	}{
		{"pending", pod("p", "", ""), true},
		{"default scheduler named", pod("p", "", "", func(p *api.Pod) { p.Spec.SchedulerName = DefaultSchedulerName }), true},
		{"another scheduler", pod("p", "", "", func(p *api.Pod) { p.Spec.SchedulerName = "gpu-scheduler" }), false},
		{"bound already", pod("p", "", "", func(p *api.Pod) { p.Spec.NodeName = "b" }), false},
		{"succeeded", pod("p", "", "", phase(api.PodSucceeded)), false},
		{"failed", pod("p", "", "", phase(api.PodFailed)), false},
		{"being deleted", pod("p", "", "", func(p *api.Pod) { p.DeletionTimestamp = api.Now() }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBinder()
			s := New(Config{View: newView(node("a")), Binder: b})
			if err := s.ScheduleOne(t.Context(), tt.pod); err != nil {
				t.Fatal(err)
			}
			got := b.bindings()
			if tt.bind && (len(got) != 1 || got[0] != (binding{"p", "a"})) {
				t.Fatalf("bindings %v, want p on a", got)
			}
			if !tt.bind && len(got) != 0 {
				t.Fatalf("bindings %v, want none", got)
			}
		})
	}
}

func TestScheduleOneUnschedulable(t *testing.T) {
	b := newBinder()
	s := New(Config{View: newView(node("a", notReady), node("b", alloc("1", "1Gi", ""))), Binder: b})
	p := pod("p", "2", "")
	err := s.ScheduleOne(t.Context(), p)
	const msg = "0/2 nodes are available: 1 insufficient cpu, 1 node(s) were not ready."
	var fe *FitError
	if !errors.As(err, &fe) || err.Error() != msg || fe.Pod != "default/p" {
		t.Fatalf("ScheduleOne = %v, want FitError %q", err, msg)
	}
	if got := b.unschedulables(); len(got) != 1 || got[0] != (unschedulable{"p", msg}) {
		t.Fatalf("Unschedulable calls %v", got)
	}

	// A retry that fails the same way does not write the same condition again.
	p.Status.SetCondition(api.PodCondition{Type: api.PodScheduled, Status: api.ConditionFalse, Reason: api.ReasonUnschedulable, Message: msg})
	if err := s.ScheduleOne(t.Context(), p); !errors.As(err, &fe) {
		t.Fatalf("ScheduleOne = %v, want a FitError", err)
	}
	if got := b.unschedulables(); len(got) != 1 {
		t.Fatalf("Unschedulable called again with an unchanged message: %v", got)
	}
}

func TestScheduleOneBindFailureReleasesCapacity(t *testing.T) {
	b := newBinder()
	s := New(Config{View: newView(node("a", alloc("1", "1Gi", "1"))), Binder: b})
	b.bindErr = errors.New("connection refused")
	if err := s.ScheduleOne(t.Context(), pod("p1", "1", "")); err == nil || !errors.Is(err, b.bindErr) {
		t.Fatalf("ScheduleOne = %v, want the bind error", err)
	}
	b.bindErr = nil
	if err := s.ScheduleOne(t.Context(), pod("p2", "1", "")); err != nil {
		t.Fatalf("the failed binding still holds the node: %v", err)
	}
}

// TestAssumedPodsCountAgainstCapacity schedules pods in a row while the View lags
// behind, as informers do.
func TestAssumedPodsCountAgainstCapacity(t *testing.T) {
	for _, strat := range []Strategy{Spread, Binpack, Random} {
		t.Run(strat.String(), func(t *testing.T) {
			b := newBinder()
			v := newView(node("a", alloc("4", "8Gi", "1")), node("b", alloc("4", "8Gi", "1")))
			s := New(Config{View: v, Binder: b, Strategy: strat})
			for _, name := range []string{"p1", "p2"} {
				if err := s.ScheduleOne(t.Context(), pod(name, "", "")); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			got := b.bindings()
			if len(got) != 2 || got[0].node == got[1].node {
				t.Fatalf("bindings %v, want one pod on each node", got)
			}
			err := s.ScheduleOne(t.Context(), pod("p3", "", ""))
			if want := "0/2 nodes are available: 2 too many pods."; err == nil || err.Error() != want {
				t.Fatalf("third pod: %v, want %q", err, want)
			}
		})
	}
}

func TestAssumedPodsOnResources(t *testing.T) {
	b := newBinder()
	s := New(Config{View: newView(node("a", alloc("2", "2Gi", "")), node("b", alloc("1", "1Gi", ""))), Binder: b, Strategy: Binpack})
	for i := range 3 {
		if err := s.ScheduleOne(t.Context(), pod(fmt.Sprint("p", i), "1", "1Gi")); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]int{}
	for _, bd := range b.bindings() {
		counts[bd.node]++
	}
	if counts["a"] != 2 || counts["b"] != 1 {
		t.Fatalf("placements %v, want 2 on a and 1 on b", counts)
	}
}

func TestAssumptionEndsWhenTheViewShowsThePod(t *testing.T) {
	b := newBinder()
	v := newView(node("a", alloc("4", "8Gi", "2")))
	s := New(Config{View: v, Binder: b})
	p1 := pod("p1", "", "")
	if err := s.ScheduleOne(t.Context(), p1); err != nil {
		t.Fatal(err)
	}
	v.place(p1, "a")
	// Counted once, from the View: room is left for one more.
	if err := s.ScheduleOne(t.Context(), pod("p2", "", "")); err != nil {
		t.Fatalf("p1 counted twice: %v", err)
	}
	if err := s.ScheduleOne(t.Context(), pod("p3", "", "")); err == nil {
		t.Fatal("p3 placed on a full node")
	}
	// A stale unbound copy of p2 (the View has not caught up) is not placed again.
	if err := s.ScheduleOne(t.Context(), pod("p2", "", "")); err != nil {
		t.Fatal(err)
	}
	if got := len(b.bindings()); got != 2 {
		t.Fatalf("%d bindings, want 2", got)
	}
}

func TestAssumptionExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBinder()
	s := New(Config{View: newView(node("a", alloc("4", "8Gi", "1"))), Binder: b, AssumeTTL: time.Minute})
	s.now = func() time.Time { return now }
	if err := s.ScheduleOne(t.Context(), pod("p1", "", "")); err != nil {
		t.Fatal(err)
	}
	if err := s.ScheduleOne(t.Context(), pod("p2", "", "")); err == nil {
		t.Fatal("p2 placed while p1 is assumed on the only slot")
	}
	now = now.Add(time.Minute + time.Second)
	if err := s.ScheduleOne(t.Context(), pod("p2", "", "")); err != nil {
		t.Fatalf("the expired assumption still holds the slot: %v", err)
	}
}

func TestPodDeletedReleasesAssumption(t *testing.T) {
	b := newBinder()
	s := New(Config{View: newView(node("a", alloc("4", "8Gi", "1"))), Binder: b})
	p1 := pod("p1", "", "")
	if err := s.ScheduleOne(t.Context(), p1); err != nil {
		t.Fatal(err)
	}
	p1.Spec.NodeName = "a"
	s.PodDeleted(p1)
	if err := s.ScheduleOne(t.Context(), pod("p2", "", "")); err != nil {
		t.Fatalf("the deleted pod still holds the slot: %v", err)
	}
}

// TestConcurrentScheduleOne races decisions for the last slots: each must go to one pod.
func TestConcurrentScheduleOne(t *testing.T) {
	var nodes []*api.Node
	for i := range 10 {
		nodes = append(nodes, node(fmt.Sprint("n", i), alloc("4", "8Gi", "1")))
	}
	b := newBinder()
	s := New(Config{View: newView(nodes...), Binder: b, Strategy: Random})
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			_ = s.ScheduleOne(context.Background(), pod(fmt.Sprint("p", i), "", ""))
			s.NodesChanged()
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, bd := range b.bindings() {
		if seen[bd.node] {
			t.Fatalf("node %s got two pods: %v", bd.node, b.bindings())
		}
		seen[bd.node] = true
	}
	if len(seen) != 10 || len(b.unschedulables()) != 20 {
		t.Fatalf("%d bound and %d unschedulable, want 10 and 20", len(seen), len(b.unschedulables()))
	}
}

func TestNewDefaults(t *testing.T) {
	s := New(Config{View: newView(), Binder: newBinder()})
	if s.strategy != Spread || s.log == nil || s.rand == nil || s.queue.initial != time.Second || s.queue.max != 30*time.Second {
		t.Fatalf("defaults: strategy %v, backoff %v..%v", s.strategy, s.queue.initial, s.queue.max)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("New without a View did not panic")
		}
	}()
	New(Config{Binder: newBinder()})
}

// BenchmarkSchedule decides for one pod among 1000 nodes holding 10 pods each.
func BenchmarkSchedule(b *testing.B) {
	for _, strat := range []Strategy{Spread, Binpack, Random} {
		b.Run(strat.String(), func(b *testing.B) {
			v := newView()
			for i := range 1000 {
				n := node(fmt.Sprintf("node-%04d", i), alloc("16", "64Gi", "110"))
				v.nodes = append(v.nodes, n)
				fill(v, n.Name, 10, "250m", "512Mi")
			}
			s := New(Config{View: v, Binder: newBinder(), Strategy: strat})
			p := pod("bench", "500m", "1Gi")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Schedule(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
