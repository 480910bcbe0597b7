package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// renamed is a fake driver under another name, standing in for the VM driver.
type renamed struct {
	*fakeDriver
	name string
}

func (r renamed) Name() string { return r.name }

func TestPodsRunWithTheDriverOfTheirRuntimeClass(t *testing.T) {
	h := newHarness(t)
	vm := renamed{newFakeDriver(h.clk), "vm"}
	withVM := func(c *Config) { c.Runtimes = map[string]Driver{api.RuntimeClassVM: vm} }
	a, stop := h.startAgent(withVM)
	pod := h.newPod("vm-one", ctr("vm"))
	pod.Spec.RuntimeClassName = api.RuntimeClassVM
	p := h.createPod(pod)
	plain := h.createPod(h.newPod("plain", ctr("app")))
	h.waitPod("vm-one", runningAt("vm", 0))
	h.waitPod("plain", runningAt("app", 0))
	id := taskID(p, "vm", 0)
	if vm.count("start "+id) != 1 || h.drv.count("start "+id) != 0 || vm.count("start "+taskID(plain, "app", 0)) != 0 {
		t.Fatalf("tasks went to the wrong driver: vm %q, containers %q", vm.callList(), h.drv.callList())
	}
	var logs strings.Builder
	if err := a.Logs(context.Background(), "default", "vm-one", "", LogOptions{}, &logs); err != nil || logs.String() != "log of "+id+"\n" {
		t.Errorf("logs: %q %v", logs.String(), err)
	}

	// After a restart the VM driver recovers its own task, and a deletion made while
	// the agent was down reaches the driver that ran the pod.
	stop()
	h.startAgent(withVM)
	vm.waitCalls(t, "recover "+id, 1)
	h.waitPod("vm-one", runningAt("vm", 0))
	if vm.count("start") != 1 || h.drv.count("recover "+id) != 0 {
		t.Errorf("the restarted agent did not adopt the VM task: vm %q, containers %q", vm.callList(), h.drv.callList())
	}
}

func TestPodOfARuntimeTheNodeLacksWaits(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	pod := h.newPod("vm-none", ctr("vm"))
	pod.Spec.RuntimeClassName = api.RuntimeClassVM
	h.createPod(pod)
	got := h.waitPod("vm-none", waitingIs("vm", reasonErrImagePull))
	if msg := status(got, "vm").State.Waiting.Message; !strings.Contains(msg, `runtime class "cloudbox-vm" is not available on node node-1`) {
		t.Errorf("message %q", msg)
	}
	if n := h.drv.count("pull"); n != 0 {
		t.Errorf("the container driver was asked to pull: %q", h.drv.callList())
	}
}
