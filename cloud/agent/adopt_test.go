package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestRestartedAgentAdoptsRunningTasks(t *testing.T) {
	h := newHarness(t)
	c := newCodes("ready")
	h.drv.setExec(c.exec)
	_, stop := h.startAgent()
	pod := h.newPod("keep", ctr("app"))
	pod.Spec.Containers[0].ReadinessProbe = execProbe(10, 1, "ready")
	pod.Spec.InitContainers = []api.Container{ctr("setup")}
	p := h.createPod(pod)
	h.drv.waitCalls(t, "start "+taskID(p, "setup", 0), 1)
	h.drv.exitTask(t, taskID(p, "setup", 0), 0, false)
	h.waitPod("keep", all(runningAt("app", 0), condIs(api.PodReady, api.ConditionTrue)))
	stop()
	id := taskID(p, "app", 0)
	pid := h.drv.task(id).h.PID

	a2, _ := h.startAgent()
	h.drv.waitCalls(t, "recover "+id, 1)
	// The adopted task is probed again (and stays ready meanwhile).
	h.drv.waitCalls(t, "exec "+id+" ready", 2)
	got := h.waitPod("keep", all(runningAt("app", 0), condIs(api.PodReady, api.ConditionTrue)))
	if n := h.drv.count("start"); n != 2 {
		t.Fatalf("%d starts, want the two of the first agent: %q", n, h.drv.callList())
	}
	if h.drv.task(id).h.PID != pid || status(got, "app").ContainerID != "cloudbox://"+id {
		t.Errorf("not the same task: %+v", status(got, "app"))
	}
	if cs := status(got, "setup"); cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
		t.Errorf("init container: %+v", cs)
	}
	var logs strings.Builder
	if err := a2.Logs(context.Background(), "default", "keep", "", LogOptions{}, &logs); err != nil || logs.String() != "log of "+id+"\n" {
		t.Errorf("logs through the new agent: %q %v", logs.String(), err)
	}

	// The new agent supervises the adopted task: its probes decide readiness, its
	// exit is seen and it restarts.
	c["ready"].Store(1)
	h.stepUntil("keep", condIs(api.PodReady, api.ConditionFalse))
	c["ready"].Store(0)
	h.drv.exitTask(t, id, 1, false)
	got = h.waitPod("keep", runningAt("app", 1))
	if lt := status(got, "app").LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 {
		t.Errorf("lastState: %+v", lt)
	}
	if h.drv.count("start "+taskID(p, "setup", 1)) != 0 {
		t.Error("the init container ran again")
	}
}

func TestTaskStartedButNotRecordedIsAdopted(t *testing.T) {
	h := newHarness(t)
	_, stop := h.startAgent()
	p := h.createPod(h.newPod("unrecorded", ctr("app")))
	h.waitPod("unrecorded", runningAt("app", 0))
	stop()
	// As if the agent died between Start and saving the handle.
	if err := os.Remove(filepath.Join(h.stateDir, "pods", p.UID, "pod.json")); err != nil {
		t.Fatal(err)
	}
	h.startAgent()
	h.drv.waitCalls(t, "recover "+taskID(p, "app", 0), 1)
	h.waitPod("unrecorded", runningAt("app", 0))
	if n := h.drv.count("start"); n != 1 {
		t.Fatalf("%d starts: %q", n, h.drv.callList())
	}
}

func TestTaskThatExitedWhileTheAgentWasDown(t *testing.T) {
	h := newHarness(t)
	_, stop := h.startAgent()
	p := h.createPod(h.newPod("died", ctr("app")))
	h.waitPod("died", runningAt("app", 0))
	stop()
	h.drv.exitTask(t, taskID(p, "app", 0), 3, false)
	h.startAgent()
	got := h.waitPod("died", runningAt("app", 1))
	lt := status(got, "app").LastTerminationState.Terminated
	if lt == nil || lt.ExitCode != 3 || lt.Reason != "Error" || lt.ContainerID != "cloudbox://"+taskID(p, "app", 0) {
		t.Errorf("lastState: %+v", lt)
	}
}

func TestTaskLostWhileTheAgentWasDown(t *testing.T) {
	h := newHarness(t)
	_, stop := h.startAgent()
	pod := h.newPod("lost", ctr("app"))
	pod.Spec.RestartPolicy = api.RestartNever
	p := h.createPod(pod)
	h.waitPod("lost", runningAt("app", 0))
	stop()
	// The driver forgot the task (the host rebooted, say).
	id := taskID(p, "app", 0)
	h.drv.mu.Lock()
	delete(h.drv.tasks, id)
	h.drv.mu.Unlock()
	h.startAgent()
	got := h.waitPod("lost", phaseIs(api.PodFailed))
	if st := status(got, "app").State.Terminated; st == nil || st.Reason != reasonStatusUnknown || st.ExitCode != 137 || st.Message == "" {
		t.Errorf("terminated: %+v", st)
	}
}

func TestPodDeletedWhileTheAgentWasDown(t *testing.T) {
	h := newHarness(t)
	_, stop := h.startAgent()
	p := h.createPod(h.newPod("orphan", ctr("app"), ctr("side")))
	keep := h.createPod(h.newPod("stays", ctr("app")))
	h.waitPod("orphan", phaseIs(api.PodRunning))
	h.waitPod("stays", phaseIs(api.PodRunning))
	stop()
	zero := int64(0)
	if _, err := h.cl.DeleteWithGrace(context.Background(), podKind, "default", "orphan", &zero); err != nil {
		t.Fatal(err)
	}
	_, stop = h.startAgent()
	h.drv.waitCalls(t, "release "+p.UID, 1)
	h.drv.waitCalls(t, "recover "+taskID(keep, "app", 0), 1)
	// Nothing between the release and the removal of the pod's state waits on the
	// agent's context: once stop returns, the removal is done.
	stop()
	calls := h.drv.callList()
	for _, name := range []string{"app", "side"} {
		id := taskID(p, name, 0)
		stopAt, destroyAt := indexOf(calls, "stop "+id+" 2s"), indexOf(calls, "destroy "+id)
		if stopAt < 0 || destroyAt < stopAt {
			t.Errorf("task %s: stop at %d, destroy at %d: %q", id, stopAt, destroyAt, calls)
		}
	}
	if _, err := os.Stat(filepath.Join(h.stateDir, "pods", p.UID)); !os.IsNotExist(err) {
		t.Errorf("state of the deleted pod remains: %v", err)
	}
	if h.drv.task(taskID(keep, "app", 0)) == nil || h.drv.count("stop "+taskID(keep, "app", 0)) != 0 {
		t.Error("the other pod's task was touched")
	}
}

func TestPodMarkedForDeletionWhileTheAgentWasDown(t *testing.T) {
	h := newHarness(t)
	_, stop := h.startAgent()
	pod := h.newPod("leaving", ctr("app"))
	pod.Spec.Containers[0].Lifecycle = &api.Lifecycle{PreStop: execHandler("drain")}
	p := h.createPod(pod)
	h.waitPod("leaving", phaseIs(api.PodRunning))
	stop()
	if _, err := h.cl.Delete(context.Background(), podKind, "default", "leaving"); err != nil {
		t.Fatal(err)
	}
	h.startAgent()
	h.waitPod("leaving", gone)
	calls := h.drv.callList()
	id := taskID(p, "app", 0)
	rec, hook := indexOf(calls, "recover "+id), indexOf(calls, "exec "+id+" drain")
	if rec < 0 || hook < rec || indexOf(calls, "destroy "+id) < hook {
		t.Errorf("calls: %q", calls)
	}
}

func TestAgentWithoutDriverFinishesDeletions(t *testing.T) {
	h := newHarness(t)
	h.startAgent(func(c *Config) { c.Driver = nil })
	h.createPod(h.newPod("nodriver", ctr("app")))
	if _, err := h.cl.Delete(context.Background(), podKind, "default", "nodriver"); err != nil {
		t.Fatal(err)
	}
	h.waitPod("nodriver", gone)
}
