package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/cloud/scheduler"
)

// kubeSchedulerPodsPerSecond is the Kubernetes scheduler's usual throughput, the
// figure its scalability write-ups and SIG Scheduling's published benchmarks quote
// for clusters of this size. It is a published number, not measured here: running
// kube-scheduler beside cloudbox would need a kube-apiserver and etcd.
const kubeSchedulerPodsPerSecond = 100

// SchedulerConfig configures the scheduler benchmark.
type SchedulerConfig struct {
	// Binary is the cloudbox executable to start as the server of the API phase.
	Binary string
	// Nodes is how many simulated nodes the in-memory phase has. If zero, 1000.
	Nodes int
	// Pods is how many pods the in-memory phase schedules per strategy. If zero, 10000.
	Pods int
	// APINodes is how many Node objects the API phase creates. If zero, 200.
	APINodes int
	// APIPods is how many pods the API phase creates. If zero, 2000. If negative, the
	// API phase is skipped.
	APIPods int
	// Out receives the report.
	Out io.Writer
}

// Scheduler measures scheduling throughput twice. First the scheduler alone, with
// in-memory fakes at its package border: a View of simulated nodes and a Binder that
// records each binding into that View, so later decisions see earlier pods, as they
// would once the server's watches caught up; once per strategy. Then the whole path
// through the API: a master-role server (no agent) with Node objects created through
// the API, pods created with concurrent clients, until the watch shows every pod bound.
func Scheduler(ctx context.Context, cfg SchedulerConfig) error {
	if cfg.Nodes == 0 {
		cfg.Nodes = 1000
	}
	if cfg.Pods == 0 {
		cfg.Pods = 10000
	}
	if cfg.APINodes == 0 {
		cfg.APINodes = 200
	}
	if cfg.APIPods == 0 {
		cfg.APIPods = 2000
	}
	out := cfg.Out
	fmt.Fprintf(out, "scheduler benchmark: %d simulated nodes (4 cpu, 8Gi, 110 pods), %d pods requesting 100m / 128Mi\n",
		cfg.Nodes, cfg.Pods)
	fmt.Fprintf(out, "  peer: the Kubernetes scheduler, ~%d pods/s (a published figure: it cannot run here without a kube-apiserver and etcd)\n",
		kubeSchedulerPodsPerSecond)
	var spread float64
	for _, st := range []scheduler.Strategy{scheduler.Spread, scheduler.Binpack, scheduler.Random} {
		rate, err := scheduleInMemory(ctx, st, cfg.Nodes, cfg.Pods)
		if err != nil {
			return err
		}
		if st == scheduler.Spread {
			spread = rate
		}
		fmt.Fprintf(out, "  %-8s %8.0f pods/s   (target >= 1000 pods/s); ratio to the published peer %.1f\n",
			st, rate, rate/kubeSchedulerPodsPerSecond)
	}

	if cfg.APIPods < 0 {
		return nil
	}
	res, err := scheduleThroughAPI(ctx, cfg.Binary, cfg.APINodes, cfg.APIPods)
	if err != nil {
		return err
	}
	bound := float64(cfg.APIPods) / res.allBound.Seconds()
	created := float64(cfg.APIPods) / res.created.Seconds()
	fmt.Fprintf(out, "through the API (master, %d Node objects, no agent), %d pods created by 16 clients:\n", cfg.APINodes, cfg.APIPods)
	fmt.Fprintf(out, "  first create -> all bound: %.2f s, %.0f pods/s\n", res.allBound.Seconds(), bound)
	fmt.Fprintf(out, "  peer: the creates alone, same run: done after %.2f s, %.0f /s; ratio %.2f\n",
		res.created.Seconds(), created, bound/created)
	fmt.Fprintf(out, "  peer: the scheduler alone (spread, in memory, above): %.0f pods/s; ratio %.2f\n", spread, bound/spread)
	return nil
}

// simNode returns a Ready node with 4 CPUs, 8Gi of memory and room for 110 pods.
func simNode(name string) *api.Node {
	n := client.NewObject[*api.Node]()
	n.Name = name
	n.Labels = map[string]string{api.LabelHostname: name}
	n.Status.Capacity = api.ResourceList{
		api.ResourceCPU:    api.MustParseQuantity("4"),
		api.ResourceMemory: api.MustParseQuantity("8Gi"),
		api.ResourcePods:   api.MustParseQuantity("110"),
	}
	n.Status.Allocatable = n.Status.Capacity
	n.Status.Conditions = []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue, Reason: "BenchReady",
		LastHeartbeatTime: api.Now(), LastTransitionTime: api.Now()}}
	return n
}

// simPod returns a pending pod of one container requesting 100m of CPU and 128Mi.
func simPod(name string) *api.Pod {
	p := client.NewObject[*api.Pod]()
	p.Name, p.Namespace = name, "default"
	p.Labels = map[string]string{"bench": "scheduler"}
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox:1.36", Command: []string{"sleep", "3600"},
		Resources: api.Resources{Requests: api.ResourceList{
			api.ResourceCPU:    api.MustParseQuantity("100m"),
			api.ResourceMemory: api.MustParseQuantity("128Mi"),
		}}}}
	p.Status.Phase = api.PodPending
	return p
}

// memView is the scheduler's View border held in memory. Nodes never change; a node's
// pod slice only grows, and readers get it capped at its length, so returning it
// shares no memory a later append writes. Safe for concurrent use.
type memView struct {
	nodes []*api.Node

	mu   sync.RWMutex
	pods map[string][]*api.Pod
}

var _ scheduler.View = (*memView)(nil)

func (v *memView) Nodes() []*api.Node { return v.nodes }

func (v *memView) PodsOnNode(name string) []*api.Pod {
	v.mu.RLock()
	defer v.mu.RUnlock()
	ps := v.pods[name]
	return ps[:len(ps):len(ps)]
}

// memBinder is the Binder border: a binding shows the pod on its node in the View at
// once, as the server's pod watch would a little later.
type memBinder struct {
	view  *memView
	bound atomic.Int64
}

var _ scheduler.Binder = (*memBinder)(nil)

func (b *memBinder) Bind(_ context.Context, p *api.Pod, node string) error {
	c := *p
	c.Spec.NodeName = node
	b.view.mu.Lock()
	b.view.pods[node] = append(b.view.pods[node], &c)
	b.view.mu.Unlock()
	b.bound.Add(1)
	return nil
}

func (b *memBinder) Unschedulable(_ context.Context, p *api.Pod, message string) error {
	return fmt.Errorf("pod %s unschedulable: %s", p.Name, message)
}

// scheduleInMemory places pods one after another on nodes simulated nodes with
// strategy and returns the rate. The pods are built before the clock starts.
func scheduleInMemory(ctx context.Context, strategy scheduler.Strategy, nodes, pods int) (float64, error) {
	v := &memView{pods: make(map[string][]*api.Pod, nodes)}
	for i := range nodes {
		v.nodes = append(v.nodes, simNode(fmt.Sprintf("sim-%04d", i)))
	}
	b := &memBinder{view: v}
	s := scheduler.New(scheduler.Config{View: v, Binder: b, Strategy: strategy})
	ps := make([]*api.Pod, pods)
	for i := range ps {
		ps[i] = simPod(fmt.Sprintf("pod-%d", i))
		ps[i].UID = fmt.Sprintf("uid-%d", i)
	}
	start := time.Now()
	for _, p := range ps {
		if err := s.ScheduleOne(ctx, p); err != nil {
			return 0, fmt.Errorf("%s: %w", strategy, err)
		}
	}
	took := time.Since(start)
	if got := b.bound.Load(); got != int64(pods) {
		return 0, fmt.Errorf("%s: %d of %d pods bound", strategy, got, pods)
	}
	return float64(pods) / took.Seconds(), nil
}

type apiResult struct {
	created  time.Duration // first create to last create answered
	allBound time.Duration // first create to the watch showing the last pod bound
}

// scheduleThroughAPI runs a master-role server, registers nodes Node objects marked
// Ready through their status, creates pods with 16 clients and times until a pod
// watch shows every one bound.
func scheduleThroughAPI(ctx context.Context, bin string, nodes, pods int) (apiResult, error) {
	dir, err := os.MkdirTemp("", "cloudbox-bench-scheduler-")
	if err != nil {
		return apiResult{}, err
	}
	defer os.RemoveAll(dir)
	// No agent heartbeats these nodes: a long grace period keeps them Ready.
	srv, _, err := startServer(ctx, bin, filepath.Join(dir, "server"), "/cloudbox-bench-scheduler",
		"--role", "master", "--node-monitor-grace-period", "1h")
	if err != nil {
		return apiResult{}, err
	}
	defer srv.remove()
	cl := srv.client
	for i := range nodes {
		n := simNode(fmt.Sprintf("sim-%04d", i))
		if _, err := cl.Create(ctx, n); err != nil {
			return apiResult{}, fmt.Errorf("creating node %s: %w", n.Name, err)
		}
		// The node controllers write a new node too: read again and reapply on a
		// conflict.
		_, err := client.ModifyStatus(ctx, cl, "", n.Name, func(cur *api.Node) error {
			cur.Status = n.Status
			return nil
		})
		if err != nil {
			return apiResult{}, fmt.Errorf("marking node %s ready: %w", n.Name, err)
		}
	}

	podKind := api.KindOfType[*api.Pod]()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := cl.List(wctx, podKind, "default", client.ListOptions{Limit: 1})
	if err != nil {
		return apiResult{}, err
	}
	events, err := cl.Watch(wctx, podKind, "default", client.ListOptions{LabelSelector: "bench=scheduler", ResourceVersion: l.ResourceVersion})
	if err != nil {
		return apiResult{}, err
	}
	allBound := make(chan error, 1)
	var res apiResult
	start := time.Now()
	go func() {
		bound := map[string]bool{}
		for ev := range events {
			if ev.Err != nil {
				allBound <- ev.Err
				return
			}
			if p, ok := ev.Object.(*api.Pod); ok && p.Spec.NodeName != "" {
				bound[p.Name] = true
				if len(bound) == pods {
					res.allBound = time.Since(start)
					allBound <- nil
					return
				}
			}
		}
		allBound <- errors.New("pod watch ended")
	}()

	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(pods) {
					return
				}
				if _, err := cl.Create(ctx, simPod(fmt.Sprintf("sched-%d", i))); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	res.created = time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return apiResult{}, err
	}
	select {
	case err := <-allBound:
		if err != nil {
			return apiResult{}, err
		}
	case <-time.After(5 * time.Minute):
		return apiResult{}, errors.New("pods not all bound within 5 minutes")
	}
	return res, nil
}
