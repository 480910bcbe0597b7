package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	Register("instance", func(d Deps) Runner { return NewInstanceController(d) })
}

// InstanceController gives each Instance that should run a launcher pod (one
// container "vm", runtimeClassName cloudbox-vm, the flavor's size as its requests),
// which the scheduler places and the node's VM driver runs; it deletes the pod to stop
// the VM, and maps the pod's life and what the node reports onto Nova's states. It
// also keeps each Volume's status (available or in-use, and where) from the
// instances that have it plugged in.
//
// The node that first runs an instance keeps its disk, so a stopped instance starts
// again on that node. A VM whose guest powers itself off stays off (SHUTOFF, power
// state Stopped) until it is started, as with Nova.
type InstanceController struct {
	base
	instances client.Typed[*api.Instance]
	pods      client.Typed[*api.Pod]
	flavors   client.Typed[*api.Flavor]
	images    client.Typed[*api.Image]
	keyPairs  client.Typed[*api.KeyPair]
	volumes   client.Typed[*api.VMVolume]
}

// NewInstanceController returns a controller reading instances, their launcher
// pods, flavors, images, key pairs and volumes from d's factory.
func NewInstanceController(d Deps) *InstanceController {
	f := d.Factory
	c := &InstanceController{base: newBase(d, "instance-controller", 2), instances: client.For[*api.Instance](f), pods: client.For[*api.Pod](f),
		flavors: client.For[*api.Flavor](f), images: client.For[*api.Image](f), keyPairs: client.For[*api.KeyPair](f),
		volumes: client.For[*api.VMVolume](f)}
	enqueue := func(inst *api.Instance) {
		c.queue.Add(inst.Key())
		c.enqueueVolumes(inst)
	}
	c.instances.AddHandler(client.TypedHandler[*api.Instance]{
		OnAdd: enqueue,
		OnUpdate: func(old, inst *api.Instance) {
			enqueue(inst)
			c.enqueueVolumes(old)
		},
		OnDelete: enqueue,
	})
	forPod := func(p *api.Pod) {
		if name := p.Labels[api.LabelInstance]; name != "" && p.Spec.RuntimeClassName == api.RuntimeClassVM {
			c.queue.Add(p.Namespace + "/" + name)
		}
	}
	c.pods.AddHandler(client.TypedHandler[*api.Pod]{OnAdd: forPod, OnUpdate: func(_, p *api.Pod) { forPod(p) }, OnDelete: forPod})
	// An instance waiting for its flavor, image or key pair goes on when it appears.
	requeueAll := func(api.Object) {
		for _, inst := range c.instances.List() {
			c.queue.Add(inst.Key())
		}
	}
	for _, inf := range []*client.Informer{c.flavors.Informer, c.images.Informer, c.keyPairs.Informer} {
		inf.AddHandler(client.Handler{OnAdd: requeueAll, OnUpdate: func(_, o api.Object) { requeueAll(o) }})
	}
	c.volumes.AddHandler(client.TypedHandler[*api.VMVolume]{
		OnAdd:    func(v *api.VMVolume) { c.queue.Add(volumeKeyPrefix + v.Key()) },
		OnUpdate: func(_, v *api.VMVolume) { c.queue.Add(volumeKeyPrefix + v.Key()) },
	})
	return c
}

// A launcher pod requests the flavor's memory in full and its vCPUs at
// api.VMCPUAllocationRatio.
const (
	// launcherGrace is how long a stopping VM has to power off through ACPI before
	// QEMU is told to quit.
	launcherGrace   = 60
	volumeKeyPrefix = "volume:"
)

// Run reconciles until ctx is cancelled.
func (c *InstanceController) Run(ctx context.Context) {
	c.runQueue(ctx, func(ctx context.Context, key string) error {
		if vol, ok := strings.CutPrefix(key, volumeKeyPrefix); ok {
			return c.syncVolume(ctx, vol)
		}
		return c.sync(ctx, key)
	})
}

// enqueueVolumes queues the volumes an instance names or has plugged in.
func (c *InstanceController) enqueueVolumes(inst *api.Instance) {
	for _, v := range inst.Spec.Volumes {
		c.queue.Add(volumeKeyPrefix + inst.Namespace + "/" + v)
	}
	for _, v := range inst.Status.Volumes {
		c.queue.Add(volumeKeyPrefix + inst.Namespace + "/" + v.Name)
	}
}

func (c *InstanceController) sync(ctx context.Context, key string) error {
	inst, ok := c.instances.Get(key)
	if !ok {
		return nil // the garbage collector removes its pod
	}
	if inst.DeletionTimestamp != nil {
		return nil
	}
	next := inst.Status
	pod, ok := c.pods.GetByName(inst.Namespace, api.InstancePodName(inst.Name))
	if ok {
		if !pod.IsControlledBy(inst.UID) {
			setState(&next, api.InstanceError, "PodNameTaken", fmt.Sprintf("pod %s exists and is not this instance's launcher", pod.Name))
			return c.writeStatus(ctx, inst, next)
		}
	}
	flavor, problem := c.resolve(inst)
	if flavor != nil && next.Flavor == nil {
		next.Flavor = &flavor.Spec
	}
	if pod != nil && pod.Spec.NodeName != "" {
		next.NodeName = pod.Spec.NodeName
	}

	switch want := inst.Spec.PowerState; {
	case want == api.PowerStopped:
		if pod == nil {
			setState(&next, api.InstanceShutoff, stoppedReason(inst), "")
			next.PowerState, next.PID = "", 0
			break
		}
		if pod.DeletionTimestamp == nil {
			if err := c.deletePod(ctx, inst, pod, "Stopping", "stopping the VM (ACPI power-off, then forced after %ds)", launcherGrace); err != nil {
				return err
			}
		}
		next.Message = "powering off"
	case pod == nil:
		if problem != nil {
			setState(&next, problem.state, problem.reason, problem.message)
			break
		}
		if err := c.createPod(ctx, inst, flavor); err != nil {
			return err
		}
		setState(&next, api.InstanceBuild, "Scheduling", "")
	case pod.DeletionTimestamp != nil:
		setState(&next, api.InstanceBuild, "Restarting", "waiting for the previous launcher pod to end")
	case pod.IsTerminal():
		// The guest powered itself off (or QEMU ended): the instance stays off until
		// someone starts it, as Nova's power-state sync does.
		reason, msg := "GuestShutdown", "the guest powered off"
		if pod.Status.Phase == api.PodFailed {
			reason, msg = "VMFailed", terminationMessage(pod)
		}
		if _, err := client.Modify(ctx, c.client, inst.Namespace, inst.Name, func(cur *api.Instance) error {
			cur.Spec.PowerState = api.PowerStopped
			return nil
		}); err != nil {
			return err
		}
		c.event(inst, "Normal", reason, msg)
		if err := c.deletePod(ctx, inst, pod, "", ""); err != nil {
			return err
		}
		setState(&next, api.InstanceShutoff, reason, msg)
		next.PowerState, next.PID = "", 0
		return c.writeStatus(ctx, inst, next)
	default:
		state, reason, msg := podState(pod)
		if state == api.InstanceActive {
			switch {
			case inst.Spec.Reboot != nil && inst.Spec.Reboot.ID != inst.Status.RebootID:
				state, reason = api.InstanceReboot, "Rebooting"
			case inst.Status.PowerState == api.PowerPaused:
				state, reason = api.InstancePaused, ""
			}
		}
		setState(&next, state, reason, msg)
	}
	return c.writeStatus(ctx, inst, next)
}

// instanceProblem is why an instance cannot be given a launcher pod yet.
type instanceProblem struct{ state, reason, message string }

// resolve finds the instance's flavor and checks its image and key pair.
func (c *InstanceController) resolve(inst *api.Instance) (*api.Flavor, *instanceProblem) {
	flavor, _ := c.flavors.Get(inst.Spec.Flavor)
	switch img, found := c.images.Get(inst.Spec.Image); {
	case flavor == nil:
		return nil, &instanceProblem{api.InstanceError, "FlavorNotFound", fmt.Sprintf("flavor %q not found", inst.Spec.Flavor)}
	case !found:
		return flavor, &instanceProblem{api.InstanceError, "ImageNotFound", fmt.Sprintf("image %q not found", inst.Spec.Image)}
	case img.Status.Phase != api.ImageActive:
		return flavor, &instanceProblem{api.InstanceBuild, "ImagePending", fmt.Sprintf("image %q is not active yet", inst.Spec.Image)}
	}
	if kp := inst.Spec.KeyPair; kp != "" {
		if _, found := c.keyPairs.GetByName(inst.Namespace, kp); !found {
			return flavor, &instanceProblem{api.InstanceError, "KeyPairNotFound", fmt.Sprintf("key pair %q not found in namespace %s", kp, inst.Namespace)}
		}
	}
	return flavor, nil
}

// launcherPod is the pod that carries inst on a node.
func launcherPod(inst *api.Instance, flavor *api.Flavor) *api.Pod {
	labels := map[string]string{}
	for k, v := range inst.Labels {
		labels[k] = v
	}
	labels[api.LabelInstance] = inst.Name
	selector := map[string]string{api.LabelVMNode: "true"}
	if z := inst.Spec.AvailabilityZone; z != "" {
		selector[api.LabelZone] = z
	}
	if n := inst.Status.NodeName; n != "" {
		selector[api.LabelHostname] = n // its disk is there
	}
	milliCPU := (int64(flavor.Spec.VCPUs)*1000 + api.VMCPUAllocationRatio - 1) / api.VMCPUAllocationRatio
	requests := api.ResourceList{
		api.ResourceCPU:    api.MustParseQuantity(fmt.Sprintf("%dm", milliCPU)),
		api.ResourceMemory: api.MustParseQuantity(fmt.Sprintf("%dMi", flavor.Spec.RAMMB)),
	}
	grace := int64(launcherGrace)
	return &api.Pod{
		TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: api.ObjectMeta{
			Name: api.InstancePodName(inst.Name), Namespace: inst.Namespace, Labels: labels,
			OwnerReferences: []api.OwnerReference{OwnerRef(inst)},
		},
		Spec: api.PodSpec{
			RuntimeClassName:              api.RuntimeClassVM,
			RestartPolicy:                 api.RestartNever,
			Hostname:                      inst.Name,
			NodeSelector:                  selector,
			TerminationGracePeriodSeconds: &grace,
			Containers: []api.Container{{
				Name: "vm", Image: inst.Spec.Image, ImagePullPolicy: api.PullIfNotPresent,
				Resources: api.Resources{Requests: requests},
			}},
		},
	}
}

func (c *InstanceController) createPod(ctx context.Context, inst *api.Instance, flavor *api.Flavor) error {
	_, err := c.client.Create(ctx, launcherPod(inst, flavor))
	if client.IsAlreadyExists(err) {
		return nil // the informer has not seen it yet; the next sync will
	}
	if err != nil {
		return fmt.Errorf("creating the launcher pod of %s: %w", inst.Key(), err)
	}
	c.event(inst, "Normal", "Scheduling", "created launcher pod "+api.InstancePodName(inst.Name))
	return nil
}

func (c *InstanceController) deletePod(ctx context.Context, inst *api.Instance, pod *api.Pod, reason, format string, args ...any) error {
	_, err := c.client.Delete(ctx, api.KindOfType[*api.Pod](), pod.Namespace, pod.Name)
	if err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("deleting launcher pod %s: %w", pod.Key(), err)
	}
	if reason != "" {
		c.event(inst, "Normal", reason, fmt.Sprintf(format, args...))
	}
	return nil
}

// podState maps a live launcher pod onto an instance state.
func podState(pod *api.Pod) (state, reason, message string) {
	if cond := pod.Status.Condition(api.PodScheduled); cond != nil && cond.Status == api.ConditionFalse && cond.Reason == "Unschedulable" {
		return api.InstanceError, "NoValidHost", "no valid host was found: " + cond.Message
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "CreateContainerError", "RunContainerError", "CrashLoopBackOff":
				return api.InstanceError, w.Reason, w.Message
			}
			return api.InstanceBuild, w.Reason, w.Message
		}
		if cs.State.Running != nil && cs.Ready {
			return api.InstanceActive, "", ""
		}
	}
	if pod.Spec.NodeName == "" {
		return api.InstanceBuild, "Scheduling", ""
	}
	return api.InstanceBuild, "Spawning", ""
}

// terminationMessage says how the launcher's container ended.
func terminationMessage(pod *api.Pod) string {
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			msg := fmt.Sprintf("QEMU ended (exit code %d, %s)", t.ExitCode, t.Reason)
			if t.Message != "" {
				msg += ": " + t.Message
			}
			return msg
		}
	}
	return "the launcher pod failed: " + pod.Status.Message
}

// reasonStopped is a stopped instance's reason when it was stopped on request.
const reasonStopped = "Stopped"

// stoppedReason keeps the reason a stopped instance already has (GuestShutdown), or
// says it was stopped on request.
func stoppedReason(inst *api.Instance) string {
	if inst.Status.State == api.InstanceShutoff && inst.Status.Reason != "" {
		return inst.Status.Reason
	}
	return reasonStopped
}

func setState(s *api.InstanceStatus, state, reason, message string) {
	s.State, s.Reason, s.Message = state, reason, message
}

func (c *InstanceController) writeStatus(ctx context.Context, inst *api.Instance, next api.InstanceStatus) error {
	if reflect.DeepEqual(inst.Status, next) {
		return nil
	}
	if inst.Status.State != next.State {
		c.log.Info("instance state", zap.String("instance", inst.Key()), zap.String("from", inst.Status.State), zap.String("to", next.State), zap.String("reason", next.Reason))
	}
	// Only the fields this controller owns are written over what the node reported
	// meanwhile.
	_, err := client.ModifyStatus(ctx, c.client, inst.Namespace, inst.Name, func(cur *api.Instance) error {
		if cur.UID != inst.UID {
			return errInstanceReplaced
		}
		s := &cur.Status
		reason, message := next.Reason, next.Message
		if next.State == api.InstanceShutoff && reason == reasonStopped && s.State == api.InstanceShutoff && s.Reason != "" {
			// next was worked out from an older cached status; the stored one already
			// says why the instance is off (GuestShutdown), and that stays.
			reason, message = s.Reason, s.Message
		}
		s.State, s.Reason, s.Message, s.NodeName, s.Flavor = next.State, reason, message, next.NodeName, next.Flavor
		if next.State == api.InstanceShutoff {
			s.PowerState, s.PID = "", 0
		}
		return nil
	})
	if client.IsNotFound(err) || errors.Is(err, errInstanceReplaced) {
		return nil
	}
	return err
}

var errInstanceReplaced = errors.New("instance replaced")

func (c *InstanceController) event(inst *api.Instance, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(inst, typ, reason, "%s", msg)
	}
}

// syncVolume sets a Volume's phase and attachments from the instances of its
// namespace that have it plugged in (status) or ask for it (spec).
func (c *InstanceController) syncVolume(ctx context.Context, key string) error {
	vol, ok := c.volumes.Get(key)
	if !ok {
		return nil
	}
	var attachments []api.VolumeAttachment
	for _, inst := range c.instances.InNamespace(vol.Namespace) {
		for _, v := range inst.Status.Volumes {
			if v.Name == vol.Name {
				attachments = append(attachments, api.VolumeAttachment{Instance: inst.Name, Device: v.Device})
			}
		}
	}
	phase := api.VolumeAvailable
	if len(attachments) > 0 {
		phase = api.VolumeInUse
	}
	if vol.Status.Phase == phase && reflect.DeepEqual(vol.Status.Attachments, attachments) {
		return nil
	}
	_, err := client.ModifyStatus(ctx, c.client, vol.Namespace, vol.Name, func(v *api.VMVolume) error {
		v.Status.Phase, v.Status.Attachments = phase, attachments
		return nil
	})
	if client.IsNotFound(err) {
		return nil
	}
	return err
}
