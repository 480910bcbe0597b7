package container

import (
	"bufio"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	// Without the devices package the cgroupfs manager cannot write device
	// rules and refuses every container that has any (all of ours do): on
	// cgroup v1 it writes devices.allow/deny, on v2 it loads an eBPF program.
	_ "github.com/opencontainers/cgroups/devices"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/zap"
)

// Cgroup layout: every container's cgroup is the absolute path
//
//	<CgroupParent>/<container ID>            (a container without a pod)
//	<CgroupParent>/<pod ID>/<container ID>   (a container of a pod)
//
// in every hierarchy. The path is absolute on purpose: a relative path
// would be joined to the agent's own cgroup (libcontainer nests it under the
// caller's), so containers would move when the agent is started from a
// different cgroup and would be killed along with a systemd unit that stops
// the agent. libcontainer's Destroy removes only the leaf, so the pod level
// is removed by us when it becomes empty.

// cgroupPath returns the container's absolute cgroup path.
func (m *Manager) cgroupPath(s *Spec) string {
	if s.Pod != "" {
		return path.Join(m.cfg.CgroupParent, s.Pod, s.ID)
	}
	return path.Join(m.cfg.CgroupParent, s.ID)
}

// resources turns Limits into OCI resources. Devices start from "deny
// all" (specconv appends the default allow rules) or "allow all" for
// privileged containers.
func (m *Manager) resources(s *Spec) *specs.LinuxResources {
	r := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: s.Privileged, Access: "rwm"}},
	}
	if l := s.Limits.MemoryBytes; l > 0 {
		r.Memory = &specs.LinuxMemory{Limit: &l}
		// memory+swap = memory forbids swap; only set it where the kernel
		// accounts swap, or the v1 cgroupfs manager fails writing a file
		// that does not exist.
		if m.swapAccounting {
			swap := l
			r.Memory.Swap = &swap
		}
	}
	if milli := s.Limits.CPUMilli; milli > 0 {
		quota := max(milli*cfsPeriod/1000, minCFSQuota)
		period := uint64(cfsPeriod)
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if p := s.Limits.Pids; p > 0 {
		r.Pids = &specs.LinuxPids{Limit: &p}
	}
	return r
}

// detectSwapAccounting reports whether memory+swap limits can be set: v2
// always has memory.swap.max (when swap is compiled in), v1 only with
// swapaccount=1.
func detectSwapAccounting(cgroup2 bool) bool {
	if cgroup2 {
		return true
	}
	mnt, err := cgroups.FindCgroupMountpoint("", "memory")
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(mnt, "memory.memsw.limit_in_bytes"))
	return err == nil
}

// oomKills returns how many processes of the cgroup the kernel OOM killer
// killed: "oom_kill" in memory.events (v2) or memory.oom_control (v1,
// Linux ≥ 4.13). memory.failcnt is not used: it counts every time the limit
// was hit, including hits that page-cache reclaim resolved.
func oomKills(paths map[string]string) uint64 {
	files := []string{}
	if p, ok := paths["memory"]; ok {
		files = append(files, filepath.Join(p, "memory.oom_control"))
	}
	if p, ok := paths[""]; ok {
		files = append(files, filepath.Join(p, "memory.events"))
	}
	for _, f := range files {
		if n, ok := readKeyedUint(f, "oom_kill"); ok {
			return n
		}
	}
	return 0
}

// readKeyedUint reads "key value" lines.
func readKeyedUint(file, key string) (uint64, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// removePodCgroups removes <CgroupParent>/<pod> from every cgroup
// hierarchy if it is empty. rmdir on a cgroup fails while it has children
// or tasks, so a pod whose other containers still exist keeps its cgroup.
func (m *Manager) removePodCgroups(pod string) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return
	}
	rel := path.Join(m.cfg.CgroupParent, pod)
	for _, mi := range mounts {
		dir := filepath.Join(mi.Mountpoint, rel)
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Debug("pod cgroup kept", zap.String("dir", dir), zap.Error(err))
		}
	}
}
