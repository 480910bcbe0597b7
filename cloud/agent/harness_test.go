package agent

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/apiserver"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/atomicfile"
	"github.com/cloudbox/cloudbox/store"

	"github.com/cloudbox/cloudbox/internal/clock"
)

// testTimeout bounds every wait of these tests; they wait on events, never sleep.
const testTimeout = 20 * time.Second

// harness is a real API server with a real store on loopback, a fake driver and a
// fake clock, for agents to run against.
type harness struct {
	t *testing.T
	// cl is an admin's client; agentClient the node's.
	cl          *client.Client
	agentClient *client.Client
	clk         *clock.Fake
	drv         *fakeDriver
	stateDir    string
	node        string
	// url and ca reach the API server, for a client of another identity.
	url string
	ca  []byte
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nsKind, _ := api.LookupKind("namespaces")
	ns := nsKind.NewObject().(*api.Namespace)
	ns.Name = "default"
	if _, err := st.Create(context.Background(), nsKind, ns); err != nil {
		t.Fatal(err)
	}
	srv := apiserver.New(apiserver.Config{Store: st, Tokens: &apiserver.Tokens{Admin: "admin-token", NodeSecret: "node-token"}})
	srv.SetReady(true)
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(func() {
		srv.Shutdown()
		ts.Close()
		st.Close()
	})
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	// The agent uses the node token, as a joined worker does.
	cl, err := client.New(client.Config{Server: ts.URL, CACert: ca, Token: "node-token"})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(client.Config{Server: ts.URL, CACert: ca, Token: "admin-token"})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	return &harness{t: t, cl: admin, agentClient: cl, clk: clk, drv: newFakeDriver(clk), stateDir: t.TempDir(), node: "node-1", url: ts.URL, ca: ca}
}

// startAgent runs a new agent on the harness's node, state directory, driver and
// clock until the returned stop is called (or the test ends). It returns once the
// node is registered.
func (h *harness) startAgent(mods ...func(*Config)) (a *Agent, stop func()) {
	h.t.Helper()
	cfg := Config{
		Client: h.agentClient, NodeName: h.node, HeartbeatInterval: time.Hour,
		Resources: &HostResources{Hostname: "host-1", CPUs: 2, MemoryBytes: 4 << 30, Pods: 110, Arch: "amd64",
			Addresses: []api.NodeAddress{{Type: "InternalIP", Address: "10.0.0.7"}}},
		Logger: zaptest.NewLogger(h.t), Driver: h.drv, StateDir: h.stateDir, Clock: h.clk,
		BackoffBase: 10 * time.Second, BackoffMax: 40 * time.Second,
		ResolvConf: writeTemp(h.t, "resolv.conf", "nameserver 192.0.2.53\n"),
		HostsFile:  writeTemp(h.t, "hosts", "127.0.0.1 localhost host-1\n"),
	}
	for _, m := range mods {
		m(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("agent: %v", err)
			}
		case <-time.After(testTimeout):
			h.t.Error("agent did not stop")
		}
	}
	h.t.Cleanup(stop)
	select {
	case <-a.Registered():
	case err := <-done:
		h.t.Fatalf("agent ended before registering: %v", err)
	case <-time.After(testTimeout):
		h.t.Fatal("agent did not register")
	}
	return a, stop
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := atomicfile.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// newPod returns a pod bound to the harness's node.
func (h *harness) newPod(name string, ctrs ...api.Container) *api.Pod {
	p := podKind.NewObject().(*api.Pod)
	p.Name, p.Namespace = name, "default"
	p.Spec.NodeName = h.node
	p.Spec.Containers = ctrs
	return p
}

func ctr(name string, cmd ...string) api.Container {
	return api.Container{Name: name, Image: "busybox:1.36", Command: cmd}
}

func (h *harness) create(obj api.Object) api.Object {
	h.t.Helper()
	o, err := h.cl.Create(context.Background(), obj)
	if err != nil {
		h.t.Fatal(err)
	}
	return o
}

func (h *harness) createPod(p *api.Pod) *api.Pod {
	h.t.Helper()
	return h.create(p).(*api.Pod)
}

// waitPod watches the pod until cond holds and returns it.
func (h *harness) waitPod(name string, cond func(*api.Pod) bool) *api.Pod {
	h.t.Helper()
	return h.stepPod(name, false, cond)
}

// stepUntil is waitPod that also moves the fake clock to each timer that is armed,
// for waits on back-off and probe periods.
func (h *harness) stepUntil(name string, cond func(*api.Pod) bool) *api.Pod {
	h.t.Helper()
	return h.stepPod(name, true, cond)
}

func (h *harness) stepPod(name string, step bool, cond func(*api.Pod) bool) *api.Pod {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	events, err := h.cl.Watch(ctx, podKind, "default", client.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		h.t.Fatal(err)
	}
	var last *api.Pod
	// A pod already gone sends no event: look once, now that the watch is open.
	if _, err := h.cl.Get(ctx, podKind, "default", name); client.IsNotFound(err) && cond(nil) {
		return nil
	}
	for {
		var pending <-chan struct{}
		if step {
			pending = h.clk.Pending()
		}
		select {
		case ev, ok := <-events:
			if !ok {
				b, _ := json.MarshalIndent(last, "", "  ")
				h.t.Fatalf("pod %s: condition not reached in time; last seen:\n%s\ndriver calls: %q", name, b, h.drv.callList())
			}
			if ev.Err != nil {
				h.t.Fatal(ev.Err)
			}
			if ev.Type == "BOOKMARK" {
				continue
			}
			p := ev.Object.(*api.Pod)
			if ev.Type == "DELETED" {
				p = nil
			}
			last = p
			if cond(p) {
				return p
			}
		case <-pending:
			h.clk.StepNext()
		}
	}
}

// Conditions of pods for waitPod.

func phaseIs(phase string) func(*api.Pod) bool {
	return func(p *api.Pod) bool { return p != nil && p.Status.Phase == phase }
}

func gone(p *api.Pod) bool { return p == nil }

func condIs(t, status string) func(*api.Pod) bool {
	return func(p *api.Pod) bool {
		if p == nil {
			return false
		}
		c := p.Status.Condition(t)
		return c != nil && c.Status == status
	}
}

func status(p *api.Pod, name string) *api.ContainerStatus {
	if p == nil {
		return nil
	}
	for _, list := range [][]api.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func waitingIs(name, reason string) func(*api.Pod) bool {
	return func(p *api.Pod) bool {
		cs := status(p, name)
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == reason
	}
}

func runningAt(name string, restarts int32) func(*api.Pod) bool {
	return func(p *api.Pod) bool {
		cs := status(p, name)
		return cs != nil && cs.State.Running != nil && cs.RestartCount == restarts
	}
}

func terminatedWith(name string, code int32) func(*api.Pod) bool {
	return func(p *api.Pod) bool {
		cs := status(p, name)
		return cs != nil && cs.State.Terminated != nil && cs.State.Terminated.ExitCode == code
	}
}

func all(conds ...func(*api.Pod) bool) func(*api.Pod) bool {
	return func(p *api.Pod) bool {
		for _, c := range conds {
			if !c(p) {
				return false
			}
		}
		return true
	}
}

// taskID is the ID the agent gives attempt n of a container.
func taskID(p *api.Pod, container string, attempt int) string {
	return p.UID + "." + container + "." + strconv.Itoa(attempt)
}
