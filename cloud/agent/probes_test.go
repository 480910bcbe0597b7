package agent

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func execProbe(period, failures int32, cmd ...string) *api.Probe {
	return &api.Probe{Handler: api.Handler{Exec: &api.ExecAction{Command: cmd}},
		PeriodSeconds: period, FailureThreshold: failures, SuccessThreshold: 1, TimeoutSeconds: 1}
}

// codes answers exec probes by command name with atomically set exit codes.
type codes map[string]*atomic.Int32

func newCodes(names ...string) codes {
	c := codes{}
	for _, n := range names {
		c[n] = &atomic.Int32{}
	}
	return c
}

func (c codes) exec(_ string, cmd []string) int {
	if v, ok := c[cmd[0]]; ok {
		return int(v.Load())
	}
	return 0
}

// steps moves the fake clock to the next armed timer n times, waiting for a timer
// to be armed each time.
func (h *harness) steps(n int) {
	h.t.Helper()
	for range n {
		select {
		case <-h.clk.Pending():
			h.clk.StepNext()
		case <-time.After(testTimeout):
			h.t.Fatal("no timer was armed")
		}
	}
}

func TestReadinessProbeFlipsReady(t *testing.T) {
	h := newHarness(t)
	c := newCodes("ready")
	h.drv.setExec(c.exec)
	h.startAgent()
	pod := h.newPod("rdy", ctr("app"))
	pod.Spec.Containers[0].ReadinessProbe = execProbe(5, 1, "ready")
	p := h.createPod(pod)

	h.waitPod("rdy", all(phaseIs(api.PodRunning), condIs(api.PodReady, api.ConditionTrue), condIs(api.ContainersReady, api.ConditionTrue)))
	c["ready"].Store(1)
	got := h.stepUntil("rdy", all(condIs(api.PodReady, api.ConditionFalse), condIs(api.ContainersReady, api.ConditionFalse)))
	if cs := status(got, "app"); cs.Ready || cs.State.Running == nil || got.Status.Phase != api.PodRunning {
		t.Errorf("not ready but still running: %+v, phase %s", cs, got.Status.Phase)
	}
	if cond := got.Status.Condition(api.PodReady); cond.Reason != "ContainersNotReady" || cond.Message != "containers with unready status: [app]" {
		t.Errorf("condition: %+v", cond)
	}
	c["ready"].Store(0)
	h.stepUntil("rdy", condIs(api.PodReady, api.ConditionTrue))
	if n := h.drv.count("stop"); n != 0 {
		t.Errorf("a readiness failure stopped the container: %q", h.drv.callList())
	}
	if n := h.drv.count("exec " + taskID(p, "app", 0) + " ready"); n < 3 {
		t.Errorf("%d readiness probes", n)
	}
}

func TestLivenessProbeFailureRestartsTheContainer(t *testing.T) {
	h := newHarness(t)
	c := newCodes("alive")
	h.drv.setExec(c.exec)
	h.startAgent()
	pod := h.newPod("live", ctr("app"))
	pod.Spec.Containers[0].LivenessProbe = execProbe(10, 2, "alive")
	p := h.createPod(pod)
	h.waitPod("live", all(phaseIs(api.PodRunning), condIs(api.PodReady, api.ConditionTrue)))
	h.drv.waitCalls(t, "exec "+taskID(p, "app", 0)+" alive", 1)

	c["alive"].Store(1)
	got := h.stepUntil("live", func(p *api.Pod) bool {
		cs := status(p, "app")
		return cs != nil && cs.RestartCount >= 1 && cs.LastTerminationState.Terminated != nil
	})
	c["alive"].Store(0)
	lt := status(got, "app").LastTerminationState.Terminated
	if !strings.Contains(lt.Message, "failed liveness probe") || lt.ExitCode != 143 {
		t.Errorf("lastState: %+v", lt)
	}
	// Two failures in a row, then the stop with the pod's grace period.
	calls := strings.Join(h.drv.callList(), "\n")
	if !strings.Contains(calls, "stop "+taskID(p, "app", 0)+" 30s") {
		t.Errorf("calls:\n%s", calls)
	}
	if n := h.drv.count("exec " + taskID(p, "app", 0) + " alive"); n < 3 {
		t.Errorf("%d liveness probes of the first task, want one success and two failures", n)
	}
}

func TestStartupProbeGatesLiveness(t *testing.T) {
	h := newHarness(t)
	c := newCodes("started", "alive")
	c["started"].Store(1)
	c["alive"].Store(1)
	h.drv.setExec(c.exec)
	h.startAgent()
	pod := h.newPod("slow", ctr("app"))
	pod.Spec.Containers[0].StartupProbe = execProbe(10, 30, "started")
	pod.Spec.Containers[0].LivenessProbe = execProbe(10, 1, "alive")
	p := h.createPod(pod)
	id := taskID(p, "app", 0)

	got := h.waitPod("slow", runningAt("app", 0))
	if cs := status(got, "app"); cs.Ready || cs.Started == nil || *cs.Started {
		t.Errorf("before the startup probe passed: ready %v started %v", cs.Ready, *cs.Started)
	}
	h.drv.waitCalls(t, "exec "+id+" started", 1)
	h.steps(5)
	h.drv.waitCalls(t, "exec "+id+" started", 6)
	if n := h.drv.count("exec " + id + " alive"); n != 0 {
		t.Fatalf("liveness ran %d times before startup succeeded", n)
	}
	if n := h.drv.count("stop"); n != 0 {
		t.Fatalf("the container was stopped during startup")
	}

	// Startup passes: liveness starts, fails, and restarts the container.
	c["started"].Store(0)
	got = h.stepUntil("slow", func(p *api.Pod) bool {
		cs := status(p, "app")
		return cs != nil && cs.RestartCount >= 1
	})
	calls := h.drv.callList()
	lastStarted, firstAlive := -1, -1
	for i, call := range calls {
		if call == "exec "+id+" started" {
			lastStarted = i
		}
		if call == "exec "+id+" alive" && firstAlive < 0 {
			firstAlive = i
		}
	}
	if firstAlive < lastStarted {
		t.Errorf("liveness ran before the startup probe succeeded: %q", calls)
	}
	if lt := status(got, "app").LastTerminationState.Terminated; lt == nil || !strings.Contains(lt.Message, "liveness") {
		t.Errorf("lastState: %+v", lt)
	}
}

func TestStartupProbeFailureRestarts(t *testing.T) {
	h := newHarness(t)
	c := newCodes("started")
	c["started"].Store(1)
	h.drv.setExec(c.exec)
	h.startAgent()
	pod := h.newPod("never", ctr("app"))
	pod.Spec.Containers[0].StartupProbe = execProbe(10, 3, "started")
	h.createPod(pod)
	got := h.stepUntil("never", func(p *api.Pod) bool {
		cs := status(p, "app")
		return cs != nil && cs.RestartCount >= 1
	})
	if lt := status(got, "app").LastTerminationState.Terminated; lt == nil || !strings.Contains(lt.Message, "failed startup probe") {
		t.Errorf("lastState: %+v", lt)
	}
}

func TestHTTPAndTCPProbesOnHostNetwork(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.Header.Get("X-Probe") != "yes" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	_, portStr, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(portStr)

	h := newHarness(t)
	h.startAgent()
	pod := h.newPod("web", ctr("app"))
	pod.Spec.HostNetwork = true
	pod.Spec.Containers[0].Ports = []api.ContainerPort{{Name: "http", ContainerPort: int32(port)}}
	pod.Spec.Containers[0].ReadinessProbe = &api.Probe{Handler: api.Handler{HTTPGet: &api.HTTPGetAction{
		Path: "/healthz", Port: api.FromString("http"), HTTPHeaders: []api.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}},
		PeriodSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1, TimeoutSeconds: 5}
	pod.Spec.Containers[0].LivenessProbe = &api.Probe{Handler: api.Handler{TCPSocket: &api.TCPSocketAction{Port: api.FromInt(int32(port))}},
		PeriodSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1, TimeoutSeconds: 5}
	h.createPod(pod)
	h.waitPod("web", condIs(api.PodReady, api.ConditionTrue))
	healthy.Store(false)
	h.stepUntil("web", condIs(api.PodReady, api.ConditionFalse))
	healthy.Store(true)
	got := h.stepUntil("web", condIs(api.PodReady, api.ConditionTrue))
	if cs := status(got, "app"); cs.RestartCount != 0 {
		t.Errorf("the tcp liveness probe failed: %+v", cs)
	}
}

func TestProbeTargetWithoutAnAddress(t *testing.T) {
	// A pod with loopback only and a driver that cannot dial into it: say so.
	if _, err := (probeTarget{host: "127.0.0.1"}).dialer(false); err == nil || !strings.Contains(err.Error(), "no IP address") {
		t.Errorf("dialer: %v", err)
	}
	for _, pt := range []probeTarget{{host: "127.0.0.1", hostNetwork: true}, {host: "10.244.0.5"}} {
		if _, err := pt.dialer(false); err != nil {
			t.Errorf("%+v: %v", pt, err)
		}
	}
	if _, err := (probeTarget{host: "127.0.0.1"}).dialer(true); err != nil {
		t.Errorf("explicit host: %v", err)
	}
	if p, err := (probeTarget{ports: []api.ContainerPort{{Name: "http", ContainerPort: 8080}}}).port(api.FromString("http")); p != 8080 || err != nil {
		t.Errorf("named port: %d %v", p, err)
	}
	if _, err := (probeTarget{}).port(api.FromString("grpc")); err == nil {
		t.Error("an unknown port name resolved")
	}
}
