package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func execHandler(cmd ...string) *api.Handler {
	return &api.Handler{Exec: &api.ExecAction{Command: cmd}}
}

// indexOf returns the position of the first call equal to want, or -1.
func indexOf(calls []string, want string) int {
	for i, c := range calls {
		if c == want {
			return i
		}
	}
	return -1
}

func TestPostStartFailureKillsTheContainer(t *testing.T) {
	h := newHarness(t)
	c := newCodes("hook")
	c["hook"].Store(7)
	h.drv.setExec(c.exec)
	h.startAgent()
	pod := h.newPod("hooked", ctr("app"))
	pod.Spec.RestartPolicy = api.RestartNever
	pod.Spec.Containers[0].Lifecycle = &api.Lifecycle{PostStart: execHandler("hook")}
	p := h.createPod(pod)
	got := h.waitPod("hooked", phaseIs(api.PodFailed))
	st := status(got, "app").State.Terminated
	if st == nil || !strings.Contains(st.Message, "PostStartHook failed") || !strings.Contains(st.Message, "exited with 7") {
		t.Errorf("terminated: %+v", st)
	}
	calls := h.drv.callList()
	id := taskID(p, "app", 0)
	if hook, stop := indexOf(calls, "exec "+id+" hook"), indexOf(calls, "stop "+id+" 30s"); hook < 0 || stop < hook {
		t.Errorf("calls: %q", calls)
	}
}

func TestPostStartRunsBeforeTheNextContainerStarts(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	pod := h.newPod("order", ctr("a"), ctr("b"))
	pod.Spec.Containers[0].Lifecycle = &api.Lifecycle{PostStart: execHandler("warm-up")}
	p := h.createPod(pod)
	h.waitPod("order", all(runningAt("a", 0), runningAt("b", 0)))
	calls := h.drv.callList()
	if hook, b := indexOf(calls, "exec "+taskID(p, "a", 0)+" warm-up"), indexOf(calls, "start "+taskID(p, "b", 0)); hook < 0 || b < hook {
		t.Errorf("calls: %q", calls)
	}
}

func TestGracefulDeleteRunsPreStopThenStops(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	pod := h.newPod("bye", ctr("app"), ctr("side"))
	pod.Spec.Containers[0].Lifecycle = &api.Lifecycle{PreStop: execHandler("drain")}
	pod.Spec.Volumes = []api.Volume{{Name: "scratch", EmptyDir: &api.EmptyDirVolume{}}}
	pod.Spec.Containers[0].VolumeMounts = []api.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	p := h.createPod(pod)
	h.waitPod("bye", phaseIs(api.PodRunning))
	vol := filepath.Join(h.stateDir, "pods", p.UID, "volumes", "scratch")
	if fi, err := os.Stat(vol); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
		t.Fatalf("emptyDir: %v %v", fi, err)
	}
	cfg := h.drv.taskConfig(t, taskID(p, "app", 0))
	if len(cfg.Mounts) != 1 || cfg.Mounts[0] != (Mount{Source: vol, Destination: "/scratch"}) {
		t.Errorf("mounts: %+v", cfg.Mounts)
	}

	if _, err := h.cl.Delete(context.Background(), podKind, "default", "bye"); err != nil {
		t.Fatal(err)
	}
	h.waitPod("bye", gone)
	calls := h.drv.callList()
	app, side := taskID(p, "app", 0), taskID(p, "side", 0)
	hook, stop := indexOf(calls, "exec "+app+" drain"), -1
	for i, c := range calls {
		if strings.HasPrefix(c, "stop "+app+" ") {
			stop = i
			grace, err := time.ParseDuration(strings.TrimPrefix(c, "stop "+app+" "))
			if err != nil || grace > 30*time.Second || grace < 25*time.Second {
				t.Errorf("grace %v (%v), want what is left of 30s", grace, err)
			}
		}
	}
	if hook < 0 || stop < hook {
		t.Errorf("preStop must run before Stop: %q", calls)
	}
	destroyApp, destroySide, release := indexOf(calls, "destroy "+app), indexOf(calls, "destroy "+side), indexOf(calls, "release "+p.UID)
	if destroyApp < stop || destroySide < 0 || release < destroyApp || release < destroySide {
		t.Errorf("destroy and release must follow the stops: %q", calls)
	}
	if _, err := os.Stat(filepath.Join(h.stateDir, "pods", p.UID)); !os.IsNotExist(err) {
		t.Errorf("the pod's state and volumes remain: %v", err)
	}
}

func TestDeletingAFinishedPod(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	pod := h.newPod("done", ctr("job"))
	pod.Spec.RestartPolicy = api.RestartNever
	p := h.createPod(pod)
	h.drv.waitCalls(t, "start "+taskID(p, "job", 0), 1)
	h.drv.exitTask(t, taskID(p, "job", 0), 0, false)
	h.waitPod("done", phaseIs(api.PodSucceeded))
	// The finished task is kept, for its logs, until the pod goes.
	if h.drv.count("destroy") != 0 {
		t.Errorf("destroyed before deletion: %q", h.drv.callList())
	}
	if _, err := h.cl.Delete(context.Background(), podKind, "default", "done"); err != nil {
		t.Fatal(err)
	}
	h.waitPod("done", gone)
	h.drv.waitCalls(t, "destroy "+taskID(p, "job", 0), 1)
	if n := h.drv.count("stop"); n != 0 {
		t.Errorf("stopped an exited task: %q", h.drv.callList())
	}
}

func TestForceDeleteStopsAtOnce(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	pod := h.newPod("forced", ctr("app"))
	pod.Spec.Containers[0].Lifecycle = &api.Lifecycle{PreStop: execHandler("drain")}
	p := h.createPod(pod)
	h.waitPod("forced", phaseIs(api.PodRunning))
	zero := int64(0)
	if _, err := h.cl.DeleteWithGrace(context.Background(), podKind, "default", "forced", &zero); err != nil {
		t.Fatal(err)
	}
	id := taskID(p, "app", 0)
	h.drv.waitCalls(t, "release "+p.UID, 1)
	calls := h.drv.callList()
	if indexOf(calls, "stop "+id+" 2s") < 0 || indexOf(calls, "destroy "+id) < 0 || indexOf(calls, "exec "+id+" drain") >= 0 {
		t.Errorf("calls: %q", calls)
	}
}
