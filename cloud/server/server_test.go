package server

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/apiserver"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/testenv"
	"github.com/cloudbox/cloudbox/runtime/container"
)

func TestMain(m *testing.M) {
	// The runtime re-executes this test binary as a container's init.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		container.Init()
	}
	os.Exit(m.Run())
}

// startServer runs a server with cfg until the test ends and waits until it is ready.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = testenv.CgroupParent(t)
	}
	cfg.Logger = zaptest.NewLogger(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server %s: %v", cfg.Role, err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("server exited before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready within 30s")
	}
	return s
}

func adminClient(t *testing.T, dataDir string) *client.Client {
	t.Helper()
	cfg, err := client.LoadConfigFile(filepath.Join(dataDir, "admin.config"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

var (
	podKind, _  = api.LookupKind("pods")
	nodeKind, _ = api.LookupKind("nodes")
)

func testPod(name, cpu, mem string) *api.Pod {
	p := podKind.NewObject().(*api.Pod)
	p.Name, p.Namespace = name, "default"
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox:1.36", Resources: api.Resources{Requests: api.ResourceList{
		api.ResourceCPU: api.MustParseQuantity(cpu), api.ResourceMemory: api.MustParseQuantity(mem)}}}}
	return p
}

// waitPod watches a pod until cond holds.
func waitPod(t *testing.T, cl *client.Client, name string, cond func(*api.Pod) bool) *api.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events, err := cl.Watch(ctx, podKind, "default", client.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if p, ok := ev.Object.(*api.Pod); ok && ev.Type != "BOOKMARK" && cond(p) {
			return p
		}
	}
	t.Fatalf("pod %s: condition not reached in time", name)
	return nil
}

// waitEvent lists, then watches, the events about the named object in the default
// namespace until one with reason arrives, and returns it.
func waitEvent(t *testing.T, cl *client.Client, object, reason string) *api.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	evKind, _ := api.LookupKind("events")
	opts := client.ListOptions{FieldSelector: "involvedObject.name=" + object}
	l, err := cl.List(ctx, evKind, "default", opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range l.Items {
		if e := o.(*api.Event); e.Reason == reason {
			return e
		}
	}
	opts.ResourceVersion = l.ResourceVersion
	ch, err := cl.Watch(ctx, evKind, "default", opts)
	if err != nil {
		t.Fatal(err)
	}
	for ev := range ch {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if e, ok := ev.Object.(*api.Event); ok && ev.Type != "BOOKMARK" && e.Reason == reason {
			return e
		}
	}
	t.Fatalf("no %s event about %s in time", reason, object)
	return nil
}

func smallNode() *agent.HostResources {
	return &agent.HostResources{Hostname: "box", CPUs: 2, MemoryBytes: 4 << 30, Pods: 110, Arch: "amd64"}
}

func TestAllInOneSchedulesPodsAndExplainsWhyNot(t *testing.T) {
	dir := t.TempDir()
	startServer(t, Config{DataDir: dir, NodeName: "node-a", NodeLabels: map[string]string{"disk": "ssd"}, Zone: "lab-1", NodeResources: smallNode()})
	cl := adminClient(t, dir)
	ctx := context.Background()

	o, err := cl.Get(ctx, nodeKind, "", "node-a")
	if err != nil {
		t.Fatal(err)
	}
	n := o.(*api.Node)
	if !n.IsReady() || n.Labels["disk"] != "ssd" || n.Labels[api.LabelZone] != "lab-1" {
		t.Fatalf("node: ready=%v labels=%v", n.IsReady(), n.Labels)
	}
	if cpu := n.Status.Allocatable[api.ResourceCPU]; cpu.MilliValue() != 2000 {
		t.Fatalf("allocatable cpu %s", cpu.String())
	}

	if _, err := cl.Create(ctx, testPod("fits", "500m", "1Gi")); err != nil {
		t.Fatal(err)
	}
	waitPod(t, cl, "fits", func(p *api.Pod) bool { return p.Spec.NodeName == "node-a" })
	if e := waitEvent(t, cl, "fits", "Scheduled"); e.Message != "Successfully assigned default/fits to node-a" ||
		e.Type != api.EventNormal || e.InvolvedObject.Kind != "Pod" || e.Source.Component != "default-scheduler" {
		t.Fatalf("Scheduled event: %+v", e)
	}
	// The agent tells of its work too, whether or not the image can be had here.
	if e := waitEvent(t, cl, "fits", "Pulling"); e.Message != `Pulling image "busybox:1.36"` || e.Source.Component != "agent" || e.Source.Host != "node-a" {
		t.Fatalf("Pulling event: %+v", e)
	}

	if _, err := cl.Create(ctx, testPod("too-big", "100m", "64Gi")); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, cl, "too-big", func(p *api.Pod) bool {
		c := p.Status.Condition(api.PodScheduled)
		return c != nil && c.Status == api.ConditionFalse
	})
	c := p.Status.Condition(api.PodScheduled)
	if c.Reason != api.ReasonUnschedulable || !strings.Contains(c.Message, "0/1 nodes are available") || !strings.Contains(c.Message, "insufficient memory") {
		t.Fatalf("unschedulable condition: %+v", c)
	}
	if e := waitEvent(t, cl, "too-big", "FailedScheduling"); e.Message != c.Message || e.Type != api.EventWarning {
		t.Fatalf("FailedScheduling event: %+v, condition message %q", e, c.Message)
	}

	sel := testPod("picky", "10m", "1Mi")
	sel.Spec.NodeSelector = map[string]string{"disk": "hdd"}
	if _, err := cl.Create(ctx, sel); err != nil {
		t.Fatal(err)
	}
	p = waitPod(t, cl, "picky", func(p *api.Pod) bool { c := p.Status.Condition(api.PodScheduled); return c != nil })
	if p.Spec.NodeName != "" || !strings.Contains(p.Status.Condition(api.PodScheduled).Message, "node selector") {
		t.Fatalf("nodeSelector mismatch: node %q, condition %+v", p.Spec.NodeName, p.Status.Condition(api.PodScheduled))
	}

	for _, f := range []string{"admin.config", "join-token", "ca.crt", "server.pid"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "admin.config")); st.Mode().Perm() != 0o600 {
		t.Errorf("admin.config mode %v, want 0600", st.Mode().Perm())
	}
}

func TestWorkerJoinsAndGoesNotReadyWhenItStops(t *testing.T) {
	masterDir := t.TempDir()
	master := startServer(t, Config{Role: RoleMaster, DataDir: masterDir, NodeMonitorGracePeriod: 2 * time.Second})
	tok, err := os.ReadFile(filepath.Join(masterDir, "join-token"))
	if err != nil {
		t.Fatal(err)
	}
	cl := adminClient(t, masterDir)

	// A worker with a token that pins another CA is refused.
	_, secret, err := apiserver.ParseJoinToken(strings.TrimSpace(string(tok)))
	if err != nil {
		t.Fatal(err)
	}
	bad := "K10" + strings.Repeat("0", 64) + "::node:" + secret
	w, err := New(Config{Role: RoleWorker, JoinURL: master.URL(), Token: bad, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "not the one the join token pins") {
		t.Fatalf("worker with a wrong CA hash: %v", err)
	}

	ctx, stopWorker := context.WithCancel(context.Background())
	workerDir := t.TempDir()
	worker, err := New(Config{Role: RoleWorker, JoinURL: master.URL(), Token: strings.TrimSpace(string(tok)), DataDir: workerDir,
		NodeName: "edge-1", HeartbeatInterval: 200 * time.Millisecond, NodeResources: smallNode(), Logger: zaptest.NewLogger(t),
		CgroupParent: testenv.CgroupParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx) }()
	select {
	case <-worker.Ready():
	case err := <-done:
		t.Fatalf("worker exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("worker did not join")
	}
	o, err := cl.Get(context.Background(), nodeKind, "", "edge-1")
	if err != nil || !o.(*api.Node).IsReady() {
		t.Fatalf("joined node: %v %v", o, err)
	}
	// `server --cleanup` on a worker's data dir finds the running worker by its pid file.
	if b, err := os.ReadFile(filepath.Join(workerDir, "server.pid")); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("worker pid file: %q %v", b, err)
	}

	stopWorker()
	<-done
	if _, err := os.Stat(filepath.Join(workerDir, "server.pid")); !os.IsNotExist(err) {
		t.Errorf("the stopped worker left its pid file: %v", err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events, err := cl.Watch(wctx, nodeKind, "", client.ListOptions{FieldSelector: "metadata.name=edge-1"})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if n, ok := ev.Object.(*api.Node); ok && ev.Type != "BOOKMARK" && !n.IsReady() && n.Name == "edge-1" {
			if c := n.Status.Condition(api.NodeReady); c.Status != api.ConditionUnknown || c.Reason != "NodeStatusUnknown" {
				t.Fatalf("NotReady condition: %+v", c)
			}
			return
		}
	}
	t.Fatal("node did not go NotReady after its agent stopped")
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Role: RoleWorker}, "--role worker needs --join URL"},
		{Config{Role: RoleWorker, JoinURL: "https://x:6443"}, "--token TOKEN"},
		{Config{Role: "boss"}, `--role "boss": must be all-in-one, master or worker`},
		{Config{Role: RoleMaster, JoinURL: "https://x"}, "--join is for --role worker"},
		{Config{SchedulerStrategy: "clever"}, "--scheduler"},
		{Config{NodeLabels: map[string]string{"bad key!": "x"}}, "--node-label"},
		{Config{Zone: "no spaces allowed"}, "--node-label[topology.kubernetes.io/zone]"},
	}
	for _, c := range cases {
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}

func TestSecondServerOnSameDataDirFailsFast(t *testing.T) {
	dir := t.TempDir()
	startServer(t, Config{DataDir: dir, NodeResources: smallNode()})
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", NodeResources: smallNode(), CgroupParent: testenv.CgroupParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "another cloudbox") {
		t.Fatalf("second server: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %v to fail", time.Since(start))
	}
}

func TestCleanupRemovesState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", NodeResources: smallNode(), CgroupParent: testenv.CgroupParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("server exited: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := Cleanup(dir, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("data dir still there: %v", err)
	}
}
