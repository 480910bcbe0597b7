package agent

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestPodRuns(t *testing.T) {
	h := newHarness(t)
	a, _ := h.startAgent()
	p := h.newPod("web", ctr("app", "sleep", "3600"), ctr("side"))
	p = h.createPod(p)

	got := h.waitPod("web", all(phaseIs(api.PodRunning), condIs(api.PodReady, api.ConditionTrue)))
	for _, c := range []string{api.PodInitialized, api.ContainersReady, api.PodReady} {
		if cond := got.Status.Condition(c); cond == nil || cond.Status != api.ConditionTrue {
			t.Errorf("condition %s: %+v", c, cond)
		}
	}
	if got.Status.HostIP != "10.0.0.7" || got.Status.StartTime == nil {
		t.Errorf("hostIP %q startTime %v", got.Status.HostIP, got.Status.StartTime)
	}
	for _, name := range []string{"app", "side"} {
		cs := status(got, name)
		id := taskID(p, name, 0)
		if cs == nil || cs.State.Running == nil || !cs.Ready || cs.RestartCount != 0 ||
			cs.ContainerID != "cloudbox://"+id || cs.ImageID != "sha256:busybox-1.36" || cs.Image != "busybox:1.36" ||
			cs.Started == nil || !*cs.Started {
			t.Errorf("status of %s: %+v", name, cs)
		}
	}
	cfg := h.drv.taskConfig(t, taskID(p, "app", 0))
	if strings.Join(cfg.Command, " ") != "sleep 3600" || cfg.Hostname != "web" || cfg.PodName != "web" || cfg.PodNamespace != "default" {
		t.Errorf("task config: %+v", cfg)
	}
	if hosts := string(cfg.Files[etcHosts]); !strings.Contains(hosts, "127.0.0.1\tlocalhost\tweb\n") {
		t.Errorf("/etc/hosts:\n%s", hosts)
	}
	if string(cfg.Files[etcHostname]) != "web\n" || string(cfg.Files[etcResolvConf]) != "nameserver 192.0.2.53\n" {
		t.Errorf("hostname %q resolv.conf %q", cfg.Files[etcHostname], cfg.Files[etcResolvConf])
	}
	if n := h.drv.count("pull busybox:1.36 IfNotPresent"); n != 2 {
		t.Errorf("%d pulls, want 2", n)
	}

	// Logs and exec reach the current task.
	var buf bytes.Buffer
	if err := a.Logs(context.Background(), "default", "web", "app", LogOptions{Tail: -1}, &buf); err != nil || buf.String() != "log of "+taskID(p, "app", 0)+"\n" {
		t.Errorf("logs: %q, %v", buf.String(), err)
	}
	if err := a.Logs(context.Background(), "default", "web", "", LogOptions{}, &buf); !errors.Is(err, ErrInvalid) {
		t.Errorf("logs without a container name in a pod of two: %v", err)
	}
	if err := a.Logs(context.Background(), "default", "web", "app", LogOptions{Previous: true}, &buf); !errors.Is(err, ErrNotFound) {
		t.Errorf("previous logs of a container never restarted: %v", err)
	}
	if err := a.Logs(context.Background(), "default", "nope", "app", LogOptions{}, &buf); !errors.Is(err, ErrNotFound) {
		t.Errorf("logs of a pod not here: %v", err)
	}
	h.drv.setExec(func(string, []string) int { return 3 })
	var out bytes.Buffer
	code, err := a.Exec(context.Background(), "default", "web", "side", ExecOptions{Command: []string{"false"}, Stdout: &out})
	if err != nil || code != 3 || out.String() != "ran false\n" {
		t.Errorf("exec: %d %v %q", code, err, out.String())
	}
}

func TestHostNetworkPodSeesTheHostsNames(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	p := h.newPod("hostnet", ctr("app"))
	p.Spec.HostNetwork = true
	p = h.createPod(p)
	h.waitPod("hostnet", phaseIs(api.PodRunning))
	cfg := h.drv.taskConfig(t, taskID(p, "app", 0))
	if !cfg.HostNetwork || cfg.Hostname != "host-1" || string(cfg.Files[etcHosts]) != "127.0.0.1 localhost host-1\n" {
		t.Errorf("hostNetwork task: hostname %q hosts %q", cfg.Hostname, cfg.Files[etcHosts])
	}
}

func TestPodIPHook(t *testing.T) {
	h := newHarness(t)
	h.startAgent(func(c *Config) { c.Network = fixedIPNetwork{"10.244.0.5"} })
	p := h.newPod("ip", ctr("app"))
	p.Spec.Hostname, p.Spec.Subdomain = "db-0", "db"
	p.Spec.Containers[0].Env = []api.EnvVar{{Name: "MY_IP", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "status.podIP"}}}}
	p = h.createPod(p)
	got := h.waitPod("ip", phaseIs(api.PodRunning))
	if got.Status.PodIP != "10.244.0.5" {
		t.Errorf("podIP %q", got.Status.PodIP)
	}
	cfg := h.drv.taskConfig(t, taskID(p, "app", 0))
	hosts := string(cfg.Files[etcHosts])
	if !strings.Contains(hosts, "10.244.0.5\tdb-0.db.default.svc.cluster.local\tdb-0\n") || !strings.Contains(hosts, "127.0.0.1\tlocalhost\n") {
		t.Errorf("/etc/hosts:\n%s", hosts)
	}
	if cfg.Hostname != "db-0" || !contains(cfg.Env, "MY_IP=10.244.0.5") {
		t.Errorf("hostname %q env %q", cfg.Hostname, cfg.Env)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestInitContainersRunInOrderBeforeContainers(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	p := h.newPod("init", ctr("app"))
	p.Spec.InitContainers = []api.Container{ctr("first"), ctr("second")}
	p = h.createPod(p)

	h.drv.waitCalls(t, "start "+taskID(p, "first", 0), 1)
	h.waitPod("init", all(phaseIs(api.PodPending), condIs(api.PodInitialized, api.ConditionFalse),
		func(p *api.Pod) bool { return status(p, "first").State.Running != nil },
		waitingIs("second", reasonPodInitializing), waitingIs("app", reasonPodInitializing)))
	if h.drv.count("start") != 1 {
		t.Fatalf("more than the first init container started: %q", h.drv.callList())
	}
	h.drv.exitTask(t, taskID(p, "first", 0), 0, false)
	h.drv.waitCalls(t, "start "+taskID(p, "second", 0), 1)
	h.drv.exitTask(t, taskID(p, "second", 0), 0, false)
	got := h.waitPod("init", all(phaseIs(api.PodRunning), condIs(api.PodInitialized, api.ConditionTrue), condIs(api.PodReady, api.ConditionTrue)))
	for _, name := range []string{"first", "second"} {
		cs := status(got, name)
		if cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" || !cs.Ready {
			t.Errorf("init container %s: %+v", name, cs)
		}
	}
}

func TestInitContainerFailureWithRestartNeverFailsThePod(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	p := h.newPod("initfail", ctr("app"))
	p.Spec.RestartPolicy = api.RestartNever
	p.Spec.InitContainers = []api.Container{ctr("setup")}
	p = h.createPod(p)
	h.drv.waitCalls(t, "start "+taskID(p, "setup", 0), 1)
	h.drv.exitTask(t, taskID(p, "setup", 0), 2, false)
	got := h.waitPod("initfail", phaseIs(api.PodFailed))
	if cs := status(got, "setup"); cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 2 || cs.State.Terminated.Reason != "Error" {
		t.Errorf("init status: %+v", cs)
	}
	if cs := status(got, "app"); cs.State.Waiting == nil || cs.State.Waiting.Reason != reasonPodInitializing {
		t.Errorf("app status: %+v", cs)
	}
	if c := got.Status.Condition(api.PodReady); c == nil || c.Reason != "PodCompleted" {
		t.Errorf("ready condition: %+v", c)
	}
	if n := h.drv.count("start"); n != 1 {
		t.Errorf("%d starts, want the init container's only: %q", n, h.drv.callList())
	}
}

func TestInitContainerFailureIsRetriedWithBackoff(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	p := h.newPod("initretry", ctr("app"))
	p.Spec.InitContainers = []api.Container{ctr("setup")}
	p = h.createPod(p)
	h.drv.waitCalls(t, "start "+taskID(p, "setup", 0), 1)
	h.drv.exitTask(t, taskID(p, "setup", 0), 1, false)
	// The first restart is immediate, the next after the back-off.
	h.drv.waitCalls(t, "start "+taskID(p, "setup", 1), 1)
	h.drv.exitTask(t, taskID(p, "setup", 1), 1, false)
	got := h.waitPod("initretry", all(phaseIs(api.PodPending), waitingIs("setup", reasonCrashLoopBackOff)))
	if cs := status(got, "setup"); cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("init status: %+v", cs)
	}
	if h.drv.count("start "+taskID(p, "app", 0)) != 0 {
		t.Fatal("the app started although its init container failed")
	}
	h.stepUntil("initretry", runningAt("setup", 2))
	h.drv.exitTask(t, taskID(p, "setup", 2), 0, false)
	h.waitPod("initretry", all(phaseIs(api.PodRunning), runningAt("app", 0)))
}

func TestCrashingContainerBacksOff(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	p := h.createPod(h.newPod("crash", ctr("app")))
	h.drv.waitCalls(t, "start "+taskID(p, "app", 0), 1)
	h.drv.exitTask(t, taskID(p, "app", 0), 1, false)
	h.drv.waitCalls(t, "start "+taskID(p, "app", 1), 1)
	h.waitPod("crash", runningAt("app", 1))
	h.drv.exitTask(t, taskID(p, "app", 1), 2, false)

	got := h.waitPod("crash", waitingIs("app", reasonCrashLoopBackOff))
	cs := status(got, "app")
	if cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 2 ||
		cs.LastTerminationState.Terminated.Reason != "Error" || cs.Ready {
		t.Errorf("status in back-off: %+v", cs)
	}
	if !strings.Contains(cs.State.Waiting.Message, "back-off 10s restarting failed container=app") {
		t.Errorf("message %q", cs.State.Waiting.Message)
	}
	if got.Status.Phase != api.PodRunning {
		t.Errorf("phase %s, want Running (restarting under Always)", got.Status.Phase)
	}
	// Nothing starts before the back-off has passed.
	h.clk.Advance(9 * time.Second)
	if n := h.drv.count("start " + taskID(p, "app", 2)); n != 0 {
		t.Fatal("restarted before the back-off passed")
	}
	h.clk.Advance(time.Second)
	got = h.waitPod("crash", runningAt("app", 2))
	if lt := status(got, "app").LastTerminationState.Terminated; lt == nil || lt.ExitCode != 2 || lt.ContainerID != "cloudbox://"+taskID(p, "app", 1) {
		t.Errorf("lastState: %+v", lt)
	}

	// The back-off doubles: 20 s now.
	h.drv.exitTask(t, taskID(p, "app", 2), 1, false)
	got = h.waitPod("crash", waitingIs("app", reasonCrashLoopBackOff))
	if msg := status(got, "app").State.Waiting.Message; !strings.Contains(msg, "back-off 20s") {
		t.Errorf("message %q", msg)
	}
	// The task before the current one is kept for logs, older ones destroyed.
	h.clk.Advance(20 * time.Second)
	h.waitPod("crash", runningAt("app", 3))
	h.drv.waitCalls(t, "destroy "+taskID(p, "app", 1), 1)
	if h.drv.count("destroy "+taskID(p, "app", 2)) != 0 {
		t.Error("the previous task was destroyed")
	}
}

func TestRestartPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy string
		code   int
		phase  string
		starts int
	}{
		{api.RestartOnFailure, 0, api.PodSucceeded, 1},
		{api.RestartNever, 0, api.PodSucceeded, 1},
		{api.RestartNever, 1, api.PodFailed, 1},
		{api.RestartOnFailure, 1, api.PodRunning, 2},
		{api.RestartAlways, 0, api.PodRunning, 2},
	} {
		t.Run(tc.policy+"/"+string(rune('0'+tc.code)), func(t *testing.T) {
			h := newHarness(t)
			h.startAgent()
			pod := h.newPod("job", ctr("work"))
			pod.Spec.RestartPolicy = tc.policy
			p := h.createPod(pod)
			h.drv.waitCalls(t, "start "+taskID(p, "work", 0), 1)
			h.drv.exitTask(t, taskID(p, "work", 0), tc.code, false)
			if tc.starts == 2 {
				h.waitPod("job", all(phaseIs(tc.phase), runningAt("work", 1)))
				return
			}
			got := h.waitPod("job", phaseIs(tc.phase))
			cs := status(got, "work")
			want := "Completed"
			if tc.code != 0 {
				want = "Error"
			}
			if cs.State.Terminated == nil || cs.State.Terminated.Reason != want || int(cs.State.Terminated.ExitCode) != tc.code ||
				cs.State.Terminated.FinishedAt == nil || cs.State.Terminated.StartedAt == nil {
				t.Errorf("status: %+v", cs.State)
			}
			if n := h.drv.count("start"); n != 1 {
				t.Errorf("%d starts", n)
			}
		})
	}
}

func TestOOMKilledIsReported(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	pod := h.newPod("oom", ctr("hog"))
	pod.Spec.RestartPolicy = api.RestartNever
	pod.Spec.Containers[0].Resources.Limits = api.ResourceList{api.ResourceMemory: api.MustParseQuantity("64Mi"), api.ResourceCPU: api.MustParseQuantity("250m")}
	p := h.createPod(pod)
	h.drv.waitCalls(t, "start "+taskID(p, "hog", 0), 1)
	if cfg := h.drv.taskConfig(t, taskID(p, "hog", 0)); cfg.MemoryBytes != 64<<20 || cfg.CPUMilli != 250 {
		t.Errorf("limits: %d bytes %d millicpu", cfg.MemoryBytes, cfg.CPUMilli)
	}
	h.drv.exitTask(t, taskID(p, "hog", 0), 137, true)
	got := h.waitPod("oom", phaseIs(api.PodFailed))
	if st := status(got, "hog").State.Terminated; st == nil || st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Errorf("terminated: %+v", st)
	}
}

func TestStartErrorCountsAsAFailedAttempt(t *testing.T) {
	h := newHarness(t)
	h.drv.startErr["bad"] = errors.New("exec: \"nope\": executable file not found in $PATH")
	h.startAgent()
	pod := h.newPod("starterr", ctr("bad"))
	pod.Spec.RestartPolicy = api.RestartNever
	h.createPod(pod)
	got := h.waitPod("starterr", phaseIs(api.PodFailed))
	if st := status(got, "bad").State.Terminated; st == nil || st.Reason != reasonStartError || st.ExitCode != 128 || !strings.Contains(st.Message, "executable file not found") {
		t.Errorf("terminated: %+v", st)
	}
}

func TestImagePullFailureBacksOff(t *testing.T) {
	h := newHarness(t)
	h.drv.setPullErr("ghost:1", errors.New("manifest unknown"))
	h.startAgent()
	pod := h.newPod("pull", api.Container{Name: "app", Image: "ghost:1", ImagePullPolicy: api.PullAlways})
	h.createPod(pod)
	got := h.waitPod("pull", waitingIs("app", reasonErrImagePull))
	if msg := status(got, "app").State.Waiting.Message; msg != "manifest unknown" || got.Status.Phase != api.PodPending {
		t.Errorf("message %q phase %s", msg, got.Status.Phase)
	}
	h.clk.Advance(pullErrorShown)
	got = h.waitPod("pull", waitingIs("app", reasonImagePullBackOff))
	if msg := status(got, "app").State.Waiting.Message; msg != `Back-off pulling image "ghost:1"` {
		t.Errorf("message %q", msg)
	}
	h.clk.Advance(8 * time.Second)
	if n := h.drv.count("pull ghost:1 Always"); n != 1 {
		t.Errorf("%d pulls during the back-off", n)
	}
	// The next try fails again: ErrImagePull, then a back-off twice as long.
	h.clk.Advance(time.Second)
	got = h.waitPod("pull", waitingIs("app", reasonErrImagePull))
	h.clk.Advance(pullErrorShown)
	h.waitPod("pull", waitingIs("app", reasonImagePullBackOff))
	h.drv.setPullErr("ghost:1", nil)
	h.clk.Advance(18 * time.Second)
	if n := h.drv.count("pull ghost:1 Always"); n != 2 {
		t.Errorf("%d pulls during the second back-off", n)
	}
	h.clk.Advance(time.Second)
	h.waitPod("pull", runningAt("app", 0))
	if n := h.drv.count("pull ghost:1 Always"); n != 3 {
		t.Errorf("%d pulls", n)
	}
}

func TestImageChangeRestartsTheContainer(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	p := h.createPod(h.newPod("upd", ctr("app")))
	h.waitPod("upd", runningAt("app", 0))
	p = h.waitPod("upd", phaseIs(api.PodRunning))
	p.Spec.Containers[0].Image = "busybox:1.37"
	if _, err := h.cl.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	got := h.waitPod("upd", all(runningAt("app", 1), func(p *api.Pod) bool { return status(p, "app").Image == "busybox:1.37" }))
	if lt := status(got, "app").LastTerminationState.Terminated; lt == nil || !strings.Contains(lt.Message, "definition changed") {
		t.Errorf("lastState: %+v", lt)
	}
}
