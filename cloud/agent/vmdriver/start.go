package vmdriver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/hypervisor"
)

// defaultCmdline is a kernel image's command line when the image gives none.
const defaultCmdline = "console=ttyS0"

// Start boots the instance that the launcher pod cfg belongs to: it makes the disk
// (once: an overlay on the image, or a blank disk of the flavor's size for a kernel
// image), the cloud-init seed, the tap, and starts QEMU.
func (d *Driver) Start(ctx context.Context, cfg *agent.TaskConfig) (*agent.TaskHandle, error) {
	inst, err := d.launcherInstance(ctx, cfg)
	if err != nil {
		return nil, err
	}
	img, err := d.image(ctx, inst.Spec.Image)
	if err != nil {
		return nil, err
	}
	flavor, err := d.flavor(ctx, inst)
	if err != nil {
		return nil, err
	}
	dir := d.instanceDir(inst.UID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	hc := hypervisor.Config{
		Name: inst.Namespace + "." + inst.Name, Dir: dir, QEMU: d.cfg.QEMU, Accel: d.cfg.Accel,
		VCPUs: flavor.VCPUs, MemoryMB: flavor.RAMMB,
		// The memory limit is hypervisor's default: the flavor's RAM plus QEMU's overhead.
		Cgroup: &hypervisor.CgroupConfig{Path: d.cgroupPath(cfg.PodUID, cfg.ID), CPUShares: cpuShares(flavor.VCPUs)},
	}
	if err := d.prepareDisk(ctx, &hc, img, flavor); err != nil {
		return nil, err
	}

	mac := macFor(inst.UID)
	seed := hypervisor.Seed{InstanceID: inst.UID, Hostname: inst.Name, UserData: []byte(inst.Spec.UserData)}
	if kp := inst.Spec.KeyPair; kp != "" {
		pair, err := client.Get[*api.KeyPair](ctx, d.cfg.Client, inst.Namespace, kp)
		if err != nil {
			return nil, fmt.Errorf("key pair %q: %w", kp, err)
		}
		seed.PublicKeys = []string{strings.TrimSpace(pair.Spec.PublicKey)}
	}
	var address string
	if onPodNetwork(inst) && d.cfg.Network != nil {
		// A VM started again keeps its address if it is still free: the guest may
		// hold on to the one its first boot configured.
		tap, err := d.cfg.Network.SetupTap(ctx, cfg.PodUID, net.ParseIP(inst.Status.Address))
		if err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		hc.Net = &hypervisor.NetConfig{Tap: tap.Name, MAC: mac}
		address = tap.IP.String()
		seed.Network = &hypervisor.SeedNetwork{
			MAC:         mac,
			Address:     (&net.IPNet{IP: tap.IP, Mask: net.CIDRMask(tap.PrefixLen, 32)}).String(),
			Gateway:     tap.Gateway.String(),
			Nameservers: []string{tap.Gateway.String()},
			Search:      []string{inst.Namespace + ".svc.cluster.local", "svc.cluster.local", "cluster.local"},
		}
	}
	hc.Seed = filepath.Join(dir, "seed.iso")
	if err := hypervisor.WriteSeed(hc.Seed, seed); err != nil {
		return nil, fmt.Errorf("cloud-init seed: %w", err)
	}

	vm, err := hypervisor.Start(ctx, hc)
	if err != nil {
		return nil, err
	}
	now := d.cfg.Clock.Now()
	t := &task{
		handle: agent.TaskHandle{ID: cfg.ID, Driver: DriverName, PodUID: cfg.PodUID, ContainerName: cfg.ContainerName,
			Attempt: cfg.Attempt, PID: vm.PID(), StartedAt: now},
		dir:    dir,
		inst:   instanceRef{Namespace: inst.Namespace, Name: inst.Name, UID: inst.UID},
		cgroup: hc.Cgroup.Path,
		vm:     vm,
		done:   make(chan struct{}),
	}
	if err := d.saveTask(t); err != nil {
		_ = vm.Kill()
		if exitedWithin(d.cfg.Clock, vm, 10*time.Second) {
			_ = removeCgroup(t.cgroup)
		}
		_ = vm.Close()
		return nil, fmt.Errorf("recording the VM: %w", err)
	}
	d.track(t)
	d.log.Info("VM started", zap.String("instance", t.inst.key()), zap.Int("pid", vm.PID()), zap.String("accel", string(d.cfg.Accel)), zap.String("address", address))
	launched := api.NewTime(now)
	d.reportStatus(ctx, t.inst, func(s *api.InstanceStatus) {
		s.Address, s.MAC, s.PID, s.Accel = address, mac, vm.PID(), string(d.cfg.Accel)
		s.ConsoleLog, s.LaunchedAt, s.PowerState, s.Volumes = vm.ConsoleLog(), launched, api.PowerRunning, nil
		if inst.Spec.Reboot != nil {
			s.RebootID = inst.Spec.Reboot.ID // a fresh boot carries out any reboot asked before it
		}
	})
	d.notifyStarted(t.inst)
	h := t.handle
	return &h, nil
}

// launcherInstance is the Instance whose launcher pod cfg belongs to.
func (d *Driver) launcherInstance(ctx context.Context, cfg *agent.TaskConfig) (*api.Instance, error) {
	name, ok := strings.CutPrefix(cfg.PodName, "vm-")
	if !ok {
		return nil, fmt.Errorf("pod %s/%s is not an instance's launcher pod (its name does not start with vm-)", cfg.PodNamespace, cfg.PodName)
	}
	inst, err := client.Get[*api.Instance](ctx, d.cfg.Client, cfg.PodNamespace, name)
	if err != nil {
		return nil, fmt.Errorf("instance %s/%s: %w", cfg.PodNamespace, name, err)
	}
	return inst, nil
}

// flavor is the instance's size: as recorded at creation, else the Flavor's.
func (d *Driver) flavor(ctx context.Context, inst *api.Instance) (*api.FlavorSpec, error) {
	if inst.Status.Flavor != nil {
		return inst.Status.Flavor, nil
	}
	flavor, err := client.Get[*api.Flavor](ctx, d.cfg.Client, "", inst.Spec.Flavor)
	if err != nil {
		return nil, fmt.Errorf("flavor %q: %w", inst.Spec.Flavor, err)
	}
	return &flavor.Spec, nil
}

// prepareDisk sets the boot of hc: a disk image becomes the backing file of the
// instance's overlay, a kernel image is booted directly (with a blank disk of the
// flavor's size, if it has one). The disk is made once and kept across stops.
func (d *Driver) prepareDisk(ctx context.Context, hc *hypervisor.Config, img *api.Image, flavor *api.FlavorSpec) error {
	files := map[string]api.ImageFile{}
	for _, f := range img.Status.Files {
		files[f.Role] = f
	}
	disk := filepath.Join(hc.Dir, "disk.qcow2")
	_, statErr := os.Stat(disk)
	exists := statErr == nil
	size := int64(flavor.DiskGB) << 30
	switch img.Spec.Type {
	case api.ImageTypeDisk:
		f, ok := files[api.ImageFileDisk]
		if !ok {
			return fmt.Errorf("image %q has no disk file", img.Name)
		}
		if !exists {
			if err := hypervisor.CreateOverlay(ctx, d.imagePath(f.SHA256), hypervisor.Format(f.Format), disk, size); err != nil {
				return err
			}
		}
		hc.Disk = disk
	case api.ImageTypeKernel:
		f, ok := files[api.ImageFileKernel]
		if !ok {
			return fmt.Errorf("image %q has no kernel file", img.Name)
		}
		hc.Kernel = d.imagePath(f.SHA256)
		if i, ok := files[api.ImageFileInitrd]; ok {
			hc.Initrd = d.imagePath(i.SHA256)
		}
		hc.Cmdline = img.Spec.Cmdline
		if hc.Cmdline == "" {
			hc.Cmdline = defaultCmdline
		}
		if size > 0 {
			if !exists {
				if err := hypervisor.CreateBlank(ctx, disk, size); err != nil {
					return err
				}
			}
			hc.Disk = disk
		}
	default:
		return fmt.Errorf("image %q has type %q", img.Name, img.Spec.Type)
	}
	return nil
}

// onPodNetwork says whether the instance wants the pod network (the default).
func onPodNetwork(inst *api.Instance) bool {
	for _, n := range inst.Spec.Networks {
		if n == api.NetworkUser {
			return false
		}
	}
	return true
}
