package hypervisor

import (
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// CgroupConfig places a VM's QEMU in a cgroup of its own, so that its CPU and memory
// are accounted and limited where the caller wants (a pod's cgroup), not in the
// caller's cgroup, which a daemonized QEMU would otherwise stay in.
type CgroupConfig struct {
	// Path is the cgroup's absolute path, the same in every hierarchy (as in
	// /proc/PID/cgroup, e.g. "/cloudbox/<pod>/<vm>"). Start creates it with its missing
	// parents; removing it once QEMU has exited is the caller's (RemoveCgroup).
	Path string
	// MemoryLimitBytes is the limit on all of QEMU's memory, guest RAM included. If
	// zero, Config.MemoryLimit.
	MemoryLimitBytes int64
	// CPUShares weighs QEMU's CPU time against its siblings' (cgroup v1 cpu.shares;
	// v2's cpu.weight is derived from it). If zero, the kernel's default (1024).
	CPUShares uint64
}

// tcgTBSizeMB caps TCG's translation cache (-accel tcg,tb-size=). QEMU 7.x reserves
// 1 GiB for it by default, which makes every VM look a gigabyte bigger to memory
// accounting and lets a busy VM grow that far. Booting the test guest (Debian's cloud
// kernel and a busybox userland) fills about 48 MiB of it; 128 MiB leaves room for a
// userland's code too, and a full cache is flushed and refilled, which costs time,
// never correctness.
const tcgTBSizeMB = 128

// MemoryLimit is the cgroup memory limit a VM gets when CgroupConfig.MemoryLimitBytes
// is zero: the guest's RAM, which a guest may touch all of; plus QEMU's own overhead,
// at least 256 MiB or a quarter of the RAM for big VMs (QEMU's heap, libraries, device
// and block-layer buffers, qcow2 caches, the page cache its disk I/O charges to the
// cgroup, page tables and dirty bitmaps that grow with RAM: measured at 30-60 MiB for a
// small TCG guest, so the margin is wide); plus the TCG translation cache. A VM that
// hits its limit is OOM-killed with no warning to its guest, so the limit is there to
// stop a runaway QEMU from taking the node, not to squeeze VMs: in normal use a VM
// must never reach it.
func (c Config) MemoryLimit() int64 {
	ram := int64(c.MemoryMB) << 20
	limit := ram + max(256<<20, ram/4)
	if c.Accel != KVM {
		limit += tcgTBSizeMB << 20
	}
	return limit
}

func (c *CgroupConfig) validate() error {
	switch {
	case c.Path == "" || !path.IsAbs(c.Path) || path.Clean(c.Path) != c.Path || c.Path == "/":
		return fmt.Errorf("%q is not an absolute, clean cgroup path below /", c.Path)
	case c.MemoryLimitBytes < 0:
		return fmt.Errorf("memory limit %d is negative", c.MemoryLimitBytes)
	}
	return nil
}

// vmCgroup is a VM's cgroup in every hierarchy, through the same cgroupfs manager
// libcontainer uses for containers (v1, v2 and hybrid).
type vmCgroup struct {
	m cgroups.Manager
}

func cgroupManager(p string) (cgroups.Manager, error) {
	// Resources must be set for the v1 manager; an empty one joins every hierarchy,
	// devices included (a new devices cgroup inherits its parent's rules).
	return manager.New(&cgroups.Cgroup{Path: p, Resources: &cgroups.Resources{}})
}

// createCgroup makes the cgroup and sets its limits, before any process is in it.
func createCgroup(c *CgroupConfig, memoryLimit int64) (*vmCgroup, error) {
	m, err := cgroupManager(c.Path)
	if err != nil {
		return nil, err
	}
	if err := m.Apply(-1); err != nil { // -1: create the directories, move nothing
		return nil, err
	}
	r := &cgroups.Resources{
		Memory:    memoryLimit,
		CpuShares: c.CPUShares,
		// QEMU needs /dev/net/tun and /dev/kvm; the cgroup keeps its parent's rules.
		SkipDevices: true,
	}
	if err := m.Set(r); err != nil {
		_ = m.Destroy()
		return nil, err
	}
	return &vmCgroup{m: m}, nil
}

// add moves pid (all its threads) into the cgroup in every hierarchy.
func (g *vmCgroup) add(pid int) error { return g.m.AddPid("", pid) }

// destroy removes the cgroup once pid (if > 0) is gone; for Start's failures.
func (g *vmCgroup) destroy(pid int) {
	if pid > 0 {
		for deadline := time.Now().Add(5 * time.Second); alive(pid) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	_ = g.m.Destroy()
}

// RemoveCgroup removes the cgroup at path (and any cgroups below it) from every
// hierarchy; a path that does not exist is not an error. It fails while a process is
// in it: call it once the VM's QEMU has exited (VM.Done).
func RemoveCgroup(p string) error {
	if p == "" || !path.IsAbs(p) || path.Clean(p) == "/" {
		return errors.New("hypervisor: RemoveCgroup needs an absolute cgroup path below /")
	}
	m, err := cgroupManager(path.Clean(p))
	if err != nil {
		return err
	}
	if err := m.Destroy(); err != nil {
		return fmt.Errorf("removing cgroup %s: %w", p, err)
	}
	return nil
}
