package scheduler

import (
	"errors"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestScheduleFilters(t *testing.T) {
	const (
		noSched = effectNoSchedule
		noExec  = effectNoExecute
	)
	tests := []struct {
		name     string
		nodes    []*api.Node
		existing func(v *fakeView)
		pod      *api.Pod
		want     string // the chosen node, or
		wantErr  string // the FitError's message
	}{
		{name: "cpu fits exactly",
			nodes:    []*api.Node{node("a", alloc("1", "1Gi", ""))},
			existing: func(v *fakeView) { fill(v, "a", 1, "500m", "") },
			pod:      pod("p", "500m", ""), want: "a"},
		{name: "cpu short",
			nodes:    []*api.Node{node("a", alloc("1", "1Gi", ""))},
			existing: func(v *fakeView) { fill(v, "a", 1, "600m", "") },
			pod:      pod("p", "500m", ""), wantErr: "0/1 nodes are available: 1 insufficient cpu."},
		{name: "memory short",
			nodes:    []*api.Node{node("a", alloc("4", "1Gi", ""))},
			existing: func(v *fakeView) { fill(v, "a", 2, "", "400Mi") },
			pod:      pod("p", "", "300Mi"), wantErr: "0/1 nodes are available: 1 insufficient memory."},
		{name: "memory fits beside the full node",
			nodes:    []*api.Node{node("a", alloc("4", "1Gi", "")), node("b", alloc("4", "2Gi", ""))},
			existing: func(v *fakeView) { fill(v, "a", 1, "", "1Gi"); fill(v, "b", 1, "", "1Gi") },
			pod:      pod("p", "", "1Gi"), want: "b"},
		{name: "cpu and memory short are both named",
			nodes:   []*api.Node{node("a", alloc("1", "1Gi", ""))},
			pod:     pod("p", "2", "2Gi"),
			wantErr: "0/1 nodes are available: 1 insufficient cpu, 1 insufficient memory."},
		{name: "terminal pods free their requests",
			nodes: []*api.Node{node("a", alloc("1", "1Gi", "1"))},
			existing: func(v *fakeView) {
				fill(v, "a", 1, "1", "1Gi", phase(api.PodSucceeded))
				v.place(pod("failed", "1", "1Gi", phase(api.PodFailed)), "a")
			},
			pod: pod("p", "1", "1Gi"), want: "a"},
		{name: "running pods hold their requests",
			nodes:    []*api.Node{node("a", alloc("1", "1Gi", ""))},
			existing: func(v *fakeView) { fill(v, "a", 1, "1", "", phase(api.PodRunning)) },
			pod:      pod("p", "100m", ""), wantErr: "0/1 nodes are available: 1 insufficient cpu."},
		{name: "pod count full",
			nodes:    []*api.Node{node("a", alloc("4", "8Gi", "2"))},
			existing: func(v *fakeView) { fill(v, "a", 2, "", "") },
			pod:      pod("p", "", ""), wantErr: "0/1 nodes are available: 1 too many pods."},
		{name: "pod count has room",
			nodes:    []*api.Node{node("a", alloc("4", "8Gi", "2"))},
			existing: func(v *fakeView) { fill(v, "a", 1, "", "") },
			pod:      pod("p", "", ""), want: "a"},
		{name: "no pods limit when the node sets none",
			nodes:    []*api.Node{node("a", alloc("4", "8Gi", ""))},
			existing: func(v *fakeView) { fill(v, "a", 500, "", "") },
			pod:      pod("p", "", ""), want: "a"},
		{name: "a pod without requests fits an overcommitted node",
			nodes:    []*api.Node{node("a", alloc("1", "1Gi", ""))},
			existing: func(v *fakeView) { fill(v, "a", 1, "2", "2Gi") },
			pod:      pod("p", "", ""), want: "a"},
		{name: "capacity stands in for missing allocatable",
			nodes: []*api.Node{node("a", func(n *api.Node) {
				n.Status.Capacity, n.Status.Allocatable = n.Status.Allocatable, nil
			})},
			pod: pod("p", "4", "8Gi"), want: "a"},
		{name: "a node reporting no cpu takes no cpu requests",
			nodes:   []*api.Node{node("a", alloc("", "8Gi", ""))},
			pod:     pod("p", "1m", ""),
			wantErr: "0/1 nodes are available: 1 insufficient cpu."},
		{name: "init container request counts",
			nodes: []*api.Node{node("a", alloc("1", "1Gi", ""))},
			pod: pod("p", "100m", "", func(p *api.Pod) {
				p.Spec.InitContainers = []api.Container{{Name: "init", Resources: api.Resources{
					Requests: api.ResourceList{api.ResourceCPU: api.MustParseQuantity("2")}}}}
			}),
			wantErr: "0/1 nodes are available: 1 insufficient cpu."},

		{name: "nodeSelector matches",
			nodes: []*api.Node{node("a", label("disk", "hdd")), node("b", label("disk", "ssd"), label("zone", "z1"))},
			pod:   pod("p", "", "", selector("disk", "ssd", "zone", "z1")), want: "b"},
		{name: "nodeSelector needs every label",
			nodes:   []*api.Node{node("a", label("disk", "ssd")), node("b", label("zone", "z1"))},
			pod:     pod("p", "", "", selector("disk", "ssd", "zone", "z1")),
			wantErr: "0/2 nodes are available: 2 node(s) didn't match node selector."},
		{name: "nodeSelector with an empty value needs the label present",
			nodes:   []*api.Node{node("a")},
			pod:     pod("p", "", "", selector("gpu", "")),
			wantErr: "0/1 nodes are available: 1 node(s) didn't match node selector."},
		{name: "nodeSelector on the hostname label",
			nodes: []*api.Node{node("a"), node("b"), node("c")},
			pod:   pod("p", "", "", selector(api.LabelHostname, "c")), want: "c"},

		{name: "not ready node is skipped",
			nodes: []*api.Node{node("a", notReady), node("b")},
			pod:   pod("p", "", ""), want: "b"},
		{name: "node without a Ready condition is not ready",
			nodes:   []*api.Node{node("a", func(n *api.Node) { n.Status.Conditions = nil })},
			pod:     pod("p", "", ""),
			wantErr: "0/1 nodes are available: 1 node(s) were not ready."},
		{name: "unschedulable node is skipped",
			nodes: []*api.Node{node("a", cordoned), node("b")},
			pod:   pod("p", "", ""), want: "b"},
		{name: "not ready and unschedulable",
			nodes:   []*api.Node{node("a", cordoned), node("b", notReady), node("c", notReady, cordoned)},
			pod:     pod("p", "", ""),
			wantErr: "0/3 nodes are available: 2 node(s) were not ready, 1 node(s) were unschedulable."},

		{name: "NoSchedule taint keeps an intolerant pod off",
			nodes:   []*api.Node{node("a", taint("dedicated", "db", noSched))},
			pod:     pod("p", "", ""),
			wantErr: "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}."},
		{name: "NoExecute taint keeps an intolerant pod off",
			nodes:   []*api.Node{node("a", taint("dedicated", "db", noExec))},
			pod:     pod("p", "", ""),
			wantErr: "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}."},
		{name: "PreferNoSchedule taint does not filter",
			nodes: []*api.Node{node("a", taint("dedicated", "db", "PreferNoSchedule"))},
			pod:   pod("p", "", ""), want: "a"},
		{name: "Equal toleration",
			nodes: []*api.Node{node("a", taint("dedicated", "db", noSched))},
			pod:   pod("p", "", "", tolerate("dedicated", "Equal", "db", noSched)), want: "a"},
		{name: "empty operator means Equal",
			nodes: []*api.Node{node("a", taint("dedicated", "db", noSched))},
			pod:   pod("p", "", "", tolerate("dedicated", "", "db", "")), want: "a"},
		{name: "Equal toleration with another value",
			nodes:   []*api.Node{node("a", taint("dedicated", "db", noSched))},
			pod:     pod("p", "", "", tolerate("dedicated", "Equal", "web", noSched)),
			wantErr: "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}."},
		{name: "Exists toleration takes any value",
			nodes: []*api.Node{node("a", taint("dedicated", "db", noExec))},
			pod:   pod("p", "", "", tolerate("dedicated", "Exists", "", noExec)), want: "a"},
		{name: "empty key with Exists tolerates everything",
			nodes: []*api.Node{node("a", taint("x", "1", noSched), taint("y", "", noExec))},
			pod:   pod("p", "", "", tolerate("", "Exists", "", "")), want: "a"},
		{name: "toleration for another effect",
			nodes:   []*api.Node{node("a", taint("dedicated", "db", noExec))},
			pod:     pod("p", "", "", tolerate("dedicated", "Exists", "", noSched)),
			wantErr: "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}."},
		{name: "every taint must be tolerated",
			nodes:   []*api.Node{node("a", taint("x", "1", noSched), taint("y", "2", noSched))},
			pod:     pod("p", "", "", tolerate("x", "Exists", "", "")),
			wantErr: "0/1 nodes are available: 1 node(s) had untolerated taint {y: 2}."},
		{name: "toleration does not attract",
			nodes: []*api.Node{node("a", taint("x", "1", noSched)), node("b")},
			pod:   pod("p", "1", "", tolerate("x", "Exists", "", "")),
			existing: func(v *fakeView) {
				fill(v, "a", 1, "1", "")
			},
			want: "b"},

		{name: "every reason counted",
			nodes: []*api.Node{
				node("a", alloc("4", "1Gi", ""), label("disk", "ssd")),
				node("b", label("disk", "hdd")),
				node("c", notReady),
				node("d", notReady, label("disk", "ssd")),
			},
			pod:     pod("p", "", "2Gi", selector("disk", "ssd")),
			wantErr: "0/4 nodes are available: 1 insufficient memory, 1 node(s) didn't match node selector, 2 node(s) were not ready."},
		{name: "no nodes",
			pod:     pod("p", "", ""),
			wantErr: "0/0 nodes are available: no nodes registered."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newView(tt.nodes...)
			if tt.existing != nil {
				tt.existing(v)
			}
			s := New(Config{View: v, Binder: newBinder()})
			got, err := s.Schedule(tt.pod)
			if tt.wantErr != "" {
				var fe *FitError
				if !errors.As(err, &fe) {
					t.Fatalf("Schedule = %q, %v; want a FitError", got, err)
				}
				if err.Error() != tt.wantErr {
					t.Fatalf("Schedule error:\n got %q\nwant %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Schedule = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestTolerates(t *testing.T) {
	taint := api.Taint{Key: "k", Value: "v", Effect: effectNoSchedule}
	tests := []struct {
		tol  api.Toleration
		want bool
	}{
		{api.Toleration{Key: "k", Operator: "Equal", Value: "v", Effect: effectNoSchedule}, true},
		{api.Toleration{Key: "k", Value: "v"}, true},
		{api.Toleration{Key: "k", Operator: "Equal", Value: "w"}, false},
		{api.Toleration{Key: "k", Operator: "Equal"}, false},
		{api.Toleration{Key: "j", Operator: "Equal", Value: "v"}, false},
		{api.Toleration{Key: "k", Operator: "Exists"}, true},
		{api.Toleration{Key: "k", Operator: "Exists", Value: "ignored"}, true},
		{api.Toleration{Key: "j", Operator: "Exists"}, false},
		{api.Toleration{Operator: "Exists"}, true},
		{api.Toleration{Operator: "Exists", Effect: effectNoExecute}, false},
		{api.Toleration{Key: "k", Operator: "Exists", Effect: effectNoSchedule}, true},
		{api.Toleration{Key: "k", Operator: "Exists", Effect: effectNoExecute}, false},
		{api.Toleration{Value: "v"}, false}, // empty key needs Exists
		{api.Toleration{Key: "k", Operator: "Gt", Value: "v"}, false},
	}
	for _, tt := range tests {
		if got := tolerates(tt.tol, taint); got != tt.want {
			t.Errorf("tolerates(%+v, %+v) = %v, want %v", tt.tol, taint, got, tt.want)
		}
	}
}

func TestRequestOfMatchesAPI(t *testing.T) {
	c := func(cpu, mem string) api.Container {
		req := api.ResourceList{}
		if cpu != "" {
			req[api.ResourceCPU] = api.MustParseQuantity(cpu)
		}
		if mem != "" {
			req[api.ResourceMemory] = api.MustParseQuantity(mem)
		}
		req["nvidia.com/gpu"] = api.MustParseQuantity("1")
		return api.Container{Name: "c", Resources: api.Resources{Requests: req}}
	}
	tests := []struct {
		name       string
		containers []api.Container
		inits      []api.Container
	}{
		{"none", nil, nil},
		{"no requests", []api.Container{{Name: "c"}}, nil},
		{"one", []api.Container{c("250m", "64Mi")}, nil},
		{"summed", []api.Container{c("250m", "64Mi"), c("1.5", "1G"), c("", "100Ki")}, nil},
		{"init smaller", []api.Container{c("1", "1Gi")}, []api.Container{c("500m", "512Mi")}},
		{"init larger", []api.Container{c("1", "1Gi")}, []api.Container{c("2", "512Mi"), c("100m", "2Gi")}},
		{"init only", nil, []api.Container{c("3", "")}},
	}
	for _, tt := range tests {
		p := &api.Pod{Spec: api.PodSpec{Containers: tt.containers, InitContainers: tt.inits}}
		want := p.Requests()
		got := requestOf(p)
		if got.cpu != want[api.ResourceCPU].MilliValue() || got.mem != want[api.ResourceMemory].MilliValue() {
			t.Errorf("%s: requestOf = %+v, Pod.Requests = %v", tt.name, got, want)
		}
	}
}
