package controller

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func startInstanceController(t *testing.T, cl *client.Client) {
	d := testDeps(t, cl)
	d.Logger = zaptest.NewLogger(t)
	startController(t, NewInstanceController(d).Run)
}

// computeFixtures creates a flavor and an active image.
func computeFixtures(t *testing.T, cl *client.Client) {
	t.Helper()
	f := &api.Flavor{Spec: api.FlavorSpec{VCPUs: 2, RAMMB: 256, DiskGB: 1}}
	f.Name = "small"
	mustCreate(t, cl, f)
	img := &api.Image{Spec: api.ImageSpec{Type: api.ImageTypeKernel}}
	img.Name = "guest"
	img = mustCreate(t, cl, img).(*api.Image)
	img.Status = api.ImageStatus{Phase: api.ImageActive, Files: []api.ImageFile{{Role: api.ImageFileKernel, Size: 1, SHA256: "00"}}}
	if _, err := cl.UpdateStatus(context.Background(), img); err != nil {
		t.Fatal(err)
	}
}

func newInstance(name string) *api.Instance {
	inst := &api.Instance{Spec: api.InstanceSpec{Flavor: "small", Image: "guest"}}
	inst.Namespace, inst.Name = "default", name
	inst.Labels = map[string]string{"app": "db"}
	return inst
}

// waitInstance waits until the instance satisfies cond and returns it.
func waitInstance(t *testing.T, cl *client.Client, name, what string, cond func(*api.Instance) bool) *api.Instance {
	t.Helper()
	objs := waitList(t, cl, "instances", "default", what, func(l []api.Object) bool {
		for _, o := range l {
			if o.GetObjectMeta().Name == name && cond(o.(*api.Instance)) {
				return true
			}
		}
		return false
	})
	for _, o := range objs {
		if o.GetObjectMeta().Name == name {
			return o.(*api.Instance)
		}
	}
	return nil
}

func stateIs(state string) func(*api.Instance) bool {
	return func(i *api.Instance) bool { return i.Status.State == state }
}

// waitLauncher waits for the instance's launcher pod and returns it.
func waitLauncher(t *testing.T, cl *client.Client, name string) *api.Pod {
	t.Helper()
	var pod *api.Pod
	waitList(t, cl, "pods", "default", "launcher pod of "+name, func(l []api.Object) bool {
		for _, o := range l {
			if o.GetObjectMeta().Name == api.InstancePodName(name) && o.GetObjectMeta().DeletionTimestamp == nil {
				pod = o.(*api.Pod)
				return true
			}
		}
		return false
	})
	return pod
}

// setLauncher plays the scheduler and the node: the pod is bound and its container
// runs (ready or not), or it ended.
func setLauncher(t *testing.T, cl *client.Client, pod *api.Pod, mutate func(*api.PodStatus)) {
	t.Helper()
	_, err := cl.ModifyStatus(context.Background(), kind("pods"), pod.Namespace, pod.Name, func(o api.Object) error {
		mutate(&o.(*api.Pod).Status)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func running(ready bool) func(*api.PodStatus) {
	return func(s *api.PodStatus) {
		s.Phase = api.PodRunning
		s.ContainerStatuses = []api.ContainerStatus{{Name: "vm", Ready: ready, State: api.ContainerState{Running: &api.ContainerStateRunning{}}}}
	}
}

func TestInstanceRunsInALauncherPodSizedByItsFlavor(t *testing.T) {
	cl := newTestAPI(t)
	computeFixtures(t, cl)
	startInstanceController(t, cl)
	inst := mustCreate(t, cl, newInstance("db1")).(*api.Instance)

	pod := waitLauncher(t, cl, "db1")
	c := pod.Spec.Containers[0]
	if pod.Spec.RuntimeClassName != api.RuntimeClassVM || c.Name != "vm" || c.Image != "guest" || pod.Spec.RestartPolicy != api.RestartNever ||
		pod.Spec.NodeSelector[api.LabelVMNode] != "true" || pod.Labels["app"] != "db" || pod.Labels[api.LabelInstance] != "db1" ||
		!pod.IsControlledBy(inst.UID) || pod.Spec.Hostname != "db1" {
		t.Fatalf("launcher pod: %+v", pod)
	}
	// Two vCPUs at 16 per core, and the flavor's memory in full.
	if cpu, mem := c.Resources.Requests[api.ResourceCPU], c.Resources.Requests[api.ResourceMemory]; cpu.MilliValue() != 125 || mem.Value() != 256<<20 {
		t.Errorf("requests: cpu %dm memory %d", cpu.MilliValue(), mem.Value())
	}
	got := waitInstance(t, cl, "db1", "BUILD", stateIs(api.InstanceBuild))
	if got.Status.Flavor == nil || got.Status.Flavor.RAMMB != 256 {
		t.Errorf("flavor snapshot: %+v", got.Status.Flavor)
	}

	if err := cl.Bind(context.Background(), pod.Namespace, pod.Name, "node-1"); err != nil {
		t.Fatal(err)
	}
	setLauncher(t, cl, pod, running(false))
	waitInstance(t, cl, "db1", "BUILD while QEMU starts", func(i *api.Instance) bool {
		return i.Status.Reason == "Spawning" || i.Status.State == api.InstanceBuild
	})
	setLauncher(t, cl, pod, running(true))
	waitInstance(t, cl, "db1", "ACTIVE", stateIs(api.InstanceActive))

	// What the node reports of the VM shows through: paused, and a reboot under way.
	change(t, cl, "instances", "default", "db1", func(o api.Object) {
		o.(*api.Instance).Spec.Reboot = &api.RebootRequest{Type: api.RebootSoft, ID: "1"}
	})
	waitInstance(t, cl, "db1", "REBOOT", stateIs(api.InstanceReboot))
	reportNode(t, cl, "db1", func(s *api.InstanceStatus) { s.RebootID = "1"; s.PowerState = api.PowerPaused })
	waitInstance(t, cl, "db1", "PAUSED", stateIs(api.InstancePaused))
	reportNode(t, cl, "db1", func(s *api.InstanceStatus) { s.PowerState = api.PowerRunning })
	waitInstance(t, cl, "db1", "ACTIVE again", stateIs(api.InstanceActive))

	// Stop deletes the launcher pod; SHUTOFF once it is gone.
	change(t, cl, "instances", "default", "db1", func(o api.Object) { o.(*api.Instance).Spec.PowerState = api.PowerStopped })
	// The pod is on a node: the test plays its agent, which removes it once QEMU ends.
	waitList(t, cl, "pods", "default", "launcher pod marked for deletion", func(l []api.Object) bool {
		return len(l) == 1 && l[0].GetObjectMeta().DeletionTimestamp != nil
	})
	waitInstance(t, cl, "db1", "powering off", func(i *api.Instance) bool { return i.Status.Message == "powering off" })
	zero := int64(0)
	if _, err := cl.DeleteWithGrace(context.Background(), kind("pods"), "default", pod.Name, &zero); err != nil {
		t.Fatal(err)
	}
	got = waitInstance(t, cl, "db1", "SHUTOFF", stateIs(api.InstanceShutoff))
	if got.Status.NodeName != "node-1" {
		t.Errorf("the stopped instance forgot its node: %+v", got.Status)
	}

	// Started again, it goes back to the node that has its disk.
	change(t, cl, "instances", "default", "db1", func(o api.Object) { o.(*api.Instance).Spec.PowerState = api.PowerRunning })
	pod = waitLauncher(t, cl, "db1")
	if pod.Spec.NodeSelector[api.LabelHostname] != "node-1" {
		t.Errorf("restarted launcher's node selector: %v", pod.Spec.NodeSelector)
	}
}

// reportNode plays the node's VM driver writing what it sees.
func reportNode(t *testing.T, cl *client.Client, name string, mutate func(*api.InstanceStatus)) {
	t.Helper()
	if _, err := cl.ModifyStatus(context.Background(), kind("instances"), "default", name, func(o api.Object) error {
		mutate(&o.(*api.Instance).Status)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestGuestPowerOffLeavesTheInstanceShutoff(t *testing.T) {
	cl := newTestAPI(t)
	computeFixtures(t, cl)
	startInstanceController(t, cl)
	mustCreate(t, cl, newInstance("vm1"))
	pod := waitLauncher(t, cl, "vm1")
	setLauncher(t, cl, pod, func(s *api.PodStatus) {
		s.Phase = api.PodSucceeded
		s.ContainerStatuses = []api.ContainerStatus{{Name: "vm", State: api.ContainerState{Terminated: &api.ContainerStateTerminated{Reason: "Completed"}}}}
	})
	got := waitInstance(t, cl, "vm1", "SHUTOFF", stateIs(api.InstanceShutoff))
	if got.Spec.PowerState != api.PowerStopped || got.Status.Reason != "GuestShutdown" {
		t.Errorf("after the guest powered off: power %q reason %q", got.Spec.PowerState, got.Status.Reason)
	}
	waitList(t, cl, "pods", "default", "the ended launcher removed", func(l []api.Object) bool { return len(l) == 0 })
}

func TestInstanceErrors(t *testing.T) {
	cl := newTestAPI(t)
	computeFixtures(t, cl)
	startInstanceController(t, cl)

	noFlavor := newInstance("noflavor")
	noFlavor.Spec.Flavor = "m9.huge"
	mustCreate(t, cl, noFlavor)
	got := waitInstance(t, cl, "noflavor", "ERROR", stateIs(api.InstanceError))
	if got.Status.Reason != "FlavorNotFound" || got.Status.Message != `flavor "m9.huge" not found` {
		t.Errorf("status: %+v", got.Status)
	}

	// A flavor no node can hold: the scheduler says so, and the instance shows it.
	mustCreate(t, cl, newInstance("big"))
	pod := waitLauncher(t, cl, "big")
	setLauncher(t, cl, pod, func(s *api.PodStatus) {
		s.Phase = api.PodPending
		s.SetCondition(api.PodCondition{Type: api.PodScheduled, Status: api.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available: 1 insufficient memory."})
	})
	got = waitInstance(t, cl, "big", "ERROR NoValidHost", stateIs(api.InstanceError))
	if got.Status.Reason != "NoValidHost" || got.Status.Message != "no valid host was found: 0/1 nodes are available: 1 insufficient memory." {
		t.Errorf("status: %+v", got.Status)
	}

	// The flavor appearing later lets the first one go on.
	f := &api.Flavor{Spec: api.FlavorSpec{VCPUs: 1, RAMMB: 128}}
	f.Name = "m9.huge"
	mustCreate(t, cl, f)
	waitLauncher(t, cl, "noflavor")
}

func TestVolumeStatusFollowsAttachments(t *testing.T) {
	cl := newTestAPI(t)
	computeFixtures(t, cl)
	startInstanceController(t, cl)
	vol := &api.VMVolume{Spec: api.VMVolumeSpec{SizeGB: 1}}
	vol.Namespace, vol.Name = "default", "data"
	mustCreate(t, cl, vol)
	inst := newInstance("vm2")
	inst.Spec.Volumes = []string{"data"}
	mustCreate(t, cl, inst)
	waitLauncher(t, cl, "vm2")
	reportNode(t, cl, "vm2", func(s *api.InstanceStatus) {
		s.Volumes = []api.InstanceVolumeStatus{{Name: "data", Device: "vol-data"}}
	})
	waitList(t, cl, "volumes", "default", "volume in-use", func(l []api.Object) bool {
		v := l[0].(*api.VMVolume)
		return v.Status.Phase == api.VolumeInUse && len(v.Status.Attachments) == 1 && v.Status.Attachments[0] == api.VolumeAttachment{Instance: "vm2", Device: "vol-data"}
	})
	reportNode(t, cl, "vm2", func(s *api.InstanceStatus) { s.Volumes = nil })
	waitList(t, cl, "volumes", "default", "volume available", func(l []api.Object) bool {
		v := l[0].(*api.VMVolume)
		return v.Status.Phase == api.VolumeAvailable && len(v.Status.Attachments) == 0
	})
}
