package scheduler

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestStrategies(t *testing.T) {
	type placed struct {
		node       string
		count      int
		cpu, mem   string
		terminated bool
	}
	tests := []struct {
		name    string
		nodes   []*api.Node
		placed  []placed
		pod     *api.Pod
		spread  string
		binpack string
	}{
		{name: "empty beats used",
			nodes:  []*api.Node{node("a"), node("b"), node("c")},
			placed: []placed{{node: "a", count: 1, cpu: "2", mem: "4Gi"}, {node: "c", count: 1, cpu: "1", mem: "1Gi"}},
			pod:    pod("p", "1", "1Gi"), spread: "b", binpack: "a"},
		{name: "fraction, not amount: a big node with more used is emptier",
			nodes:  []*api.Node{node("big", alloc("8", "16Gi", "")), node("small", alloc("2", "4Gi", ""))},
			placed: []placed{{node: "big", count: 1, cpu: "2", mem: "4Gi"}},
			pod:    pod("p", "1", "1Gi"), spread: "big", binpack: "small"},
		{name: "cpu and memory averaged",
			// a: cpu 3/4, mem 1/8 after placement = 0.4375; b: cpu 1/4, mem 5/8 = 0.4375
			// plus b holds fewer pods; c: cpu 2/4, mem 4/8 = 0.5.
			nodes: []*api.Node{node("a"), node("b"), node("c")},
			placed: []placed{
				{node: "a", count: 2, cpu: "1", mem: ""},
				{node: "b", count: 1, cpu: "", mem: "4Gi"},
				{node: "c", count: 1, cpu: "1", mem: "3Gi"},
			},
			pod: pod("p", "1", "1Gi"), spread: "b", binpack: "c"},
		{name: "equal fraction: spread takes fewer pods, binpack more",
			nodes:  []*api.Node{node("a"), node("b")},
			placed: []placed{{node: "a", count: 3, cpu: "", mem: ""}, {node: "b", count: 1, cpu: "", mem: ""}},
			pod:    pod("p", "", ""), spread: "b", binpack: "a"},
		{name: "equal fraction reached differently is still a tie",
			// a: 1/3 + 2/3 and b: 1/2 + 1/2 of cpu and memory.
			nodes: []*api.Node{node("a", alloc("3", "3Gi", "")), node("b", alloc("2", "2Gi", ""))},
			placed: []placed{
				{node: "a", count: 1, cpu: "", mem: "1Gi"},
				{node: "b", count: 2, cpu: "500m", mem: "512Mi"},
			},
			pod: pod("p", "1", "1Gi"), spread: "a", binpack: "b"},
		{name: "full tie goes to the first name",
			nodes: []*api.Node{node("c"), node("a"), node("b")},
			pod:   pod("p", "1", "1Gi"), spread: "a", binpack: "a"},
		{name: "terminal pods do not count",
			nodes:  []*api.Node{node("a"), node("b")},
			placed: []placed{{node: "a", count: 3, cpu: "1", mem: "2Gi", terminated: true}, {node: "b", count: 1, cpu: "100m", mem: ""}},
			pod:    pod("p", "1", "1Gi"), spread: "a", binpack: "b"},
		{name: "infeasible nodes are not scored",
			nodes:  []*api.Node{node("a", notReady), node("b"), node("c", cordoned)},
			placed: []placed{{node: "b", count: 1, cpu: "3", mem: "7Gi"}},
			pod:    pod("p", "1", "1Gi"), spread: "b", binpack: "b"},
		{name: "binpack moves on when the fullest node is full",
			nodes:  []*api.Node{node("a"), node("b"), node("c")},
			placed: []placed{{node: "a", count: 1, cpu: "3500m", mem: ""}, {node: "b", count: 1, cpu: "2", mem: ""}},
			pod:    pod("p", "1", ""), spread: "c", binpack: "b"},
	}
	for _, tt := range tests {
		for _, strat := range []Strategy{Spread, Binpack} {
			t.Run(tt.name+"/"+strat.String(), func(t *testing.T) {
				v := newView(tt.nodes...)
				for _, p := range tt.placed {
					var opts []func(*api.Pod)
					if p.terminated {
						opts = append(opts, phase(api.PodSucceeded))
					}
					fill(v, p.node, p.count, p.cpu, p.mem, opts...)
				}
				want := tt.spread
				if strat == Binpack {
					want = tt.binpack
				}
				s := New(Config{View: v, Binder: newBinder(), Strategy: strat})
				if got, err := s.Schedule(tt.pod); err != nil || got != want {
					t.Fatalf("Schedule = %q, %v; want %q", got, err, want)
				}
			})
		}
	}
}

func TestSpreadFillsEvenlyAndBinpackFillsInTurn(t *testing.T) {
	for _, tt := range []struct {
		strat Strategy
		want  []string
	}{
		{Spread, []string{"a", "b", "c", "a", "b", "c"}},
		{Binpack, []string{"a", "a", "b", "b", "c", "c"}},
	} {
		t.Run(tt.strat.String(), func(t *testing.T) {
			nodes := []*api.Node{node("a", alloc("2", "2Gi", "")), node("b", alloc("2", "2Gi", "")), node("c", alloc("2", "2Gi", ""))}
			b := newBinder()
			s := New(Config{View: newView(nodes...), Binder: b, Strategy: tt.strat})
			for i := range tt.want {
				if err := s.ScheduleOne(t.Context(), pod(string(rune('p'+i)), "1", "1Gi")); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, bd := range b.bindings() {
				got = append(got, bd.node)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("placements %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRandomPicksEveryFeasibleNode(t *testing.T) {
	nodes := []*api.Node{
		node("a"), node("b", notReady), node("c"), node("d", cordoned),
		node("e", alloc("100m", "8Gi", "")), node("f"), node("g", taint("x", "", effectNoSchedule)),
	}
	feasible := map[string]bool{"a": true, "c": true, "f": true}
	s := New(Config{View: newView(nodes...), Binder: newBinder(), Strategy: Random, Rand: rand.New(rand.NewPCG(1, 2))})
	seen := map[string]int{}
	for range 1000 {
		got, err := s.Schedule(pod("p", "1", ""))
		if err != nil {
			t.Fatal(err)
		}
		if !feasible[got] {
			t.Fatalf("Random picked %q, which the pod does not fit", got)
		}
		seen[got]++
	}
	for n := range feasible {
		if seen[n] == 0 {
			t.Errorf("Random never picked %q in 1000 runs: %v", n, seen)
		}
	}
}

func TestRandomIsReproducibleWhateverTheViewOrder(t *testing.T) {
	picks := func(nodes ...*api.Node) []string {
		s := New(Config{View: newView(nodes...), Binder: newBinder(), Strategy: Random, Rand: rand.New(rand.NewPCG(7, 7))})
		var out []string
		for range 20 {
			n, err := s.Schedule(pod("p", "", ""))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out
	}
	a, b, c := node("a"), node("b"), node("c")
	if x, y := picks(a, b, c), picks(c, a, b); strings.Join(x, "") != strings.Join(y, "") {
		t.Fatalf("same seed, different node order: %v vs %v", x, y)
	}
}

func TestParseStrategy(t *testing.T) {
	tests := []struct {
		in      string
		want    Strategy
		wantErr string
	}{
		{"", Spread, ""},
		{"spread", Spread, ""},
		{"binpack", Binpack, ""},
		{"random", Random, ""},
		{"BinPack", Binpack, ""},
		{"fill", 0, `unknown scheduling strategy "fill": valid strategies are spread, binpack, random`},
	}
	for _, tt := range tests {
		got, err := ParseStrategy(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseStrategy(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseStrategy(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if tt.in != "" && got.String() != strings.ToLower(tt.in) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	var zero Strategy
	if zero != Spread {
		t.Error("the zero Strategy is not Spread")
	}
}
