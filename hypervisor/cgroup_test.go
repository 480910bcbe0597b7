package hypervisor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"

	"github.com/cloudbox/cloudbox/internal/testenv"
)

func requireCgroups(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
}

// cgroupFile is file in the cgroup at path of the hierarchy that has controller.
func cgroupFile(t *testing.T, controller, path, file string) string {
	t.Helper()
	if cgroups.IsCgroup2UnifiedMode() {
		return filepath.Join("/sys/fs/cgroup", path, file)
	}
	mnt, err := cgroups.FindCgroupMountpoint("", controller)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(mnt, path, file)
}

func readUint(t *testing.T, file string) uint64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return n
}

// QEMU runs in the cgroup it is given, in every hierarchy, with the limits set, boots
// there, and the cgroup can be removed once it has exited.
func TestStartInCgroup(t *testing.T) {
	requireCgroups(t)
	cfg := testConfig(t)
	path := testenv.CgroupParent(t) + "/vm1"
	cfg.Cgroup = &CgroupConfig{Path: path, CPUShares: 64}
	v := startVM(t, cfg)
	t.Cleanup(func() {
		v.Kill()
		select {
		case <-v.Done():
		case <-time.After(10 * time.Second):
		}
		if err := RemoveCgroup(path); err != nil {
			t.Errorf("RemoveCgroup: %v", err)
		}
		if _, err := os.Stat(cgroupFile(t, "memory", path, "")); err == nil {
			t.Errorf("cgroup %s left after RemoveCgroup", path)
		}
	})

	// Every hierarchy: "ID:controllers:path" lines, one per hierarchy ("0::" for v2).
	b, err := os.ReadFile("/proc/" + strconv.Itoa(v.PID()) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[2] != path {
			t.Errorf("QEMU (pid %d) is not in %s in every hierarchy: %q", v.PID(), path, line)
		}
	}
	procs, err := os.ReadFile(cgroupFile(t, "memory", path, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(procs)), strconv.Itoa(v.PID())) {
		t.Errorf("cgroup.procs of %s = %q, lacks QEMU's pid %d", path, procs, v.PID())
	}

	want := uint64(cfg.MemoryLimit())
	if want != (256+256+tcgTBSizeMB)<<20 {
		t.Errorf("MemoryLimit = %d", want)
	}
	if cgroups.IsCgroup2UnifiedMode() {
		if got := readUint(t, cgroupFile(t, "memory", path, "memory.max")); got != want {
			t.Errorf("memory.max = %d, want %d", got, want)
		}
		if got := readUint(t, cgroupFile(t, "cpu", path, "cpu.weight")); got != cgroups.ConvertCPUSharesToCgroupV2Value(64) {
			t.Errorf("cpu.weight = %d", got)
		}
	} else {
		if got := readUint(t, cgroupFile(t, "memory", path, "memory.limit_in_bytes")); got != want {
			t.Errorf("memory.limit_in_bytes = %d, want %d", got, want)
		}
		if got := readUint(t, cgroupFile(t, "cpu", path, "cpu.shares")); got != 64 {
			t.Errorf("cpu.shares = %d, want 64", got)
		}
	}

	if st, err := v.State(ctxT(t)); err != nil || st != StateRunning {
		t.Fatalf("State = %q, %v; want running (Start resumes the vCPUs it started stopped)", st, err)
	}
	waitLog(t, v, bootMarker, 1)
	usageFile := "memory.usage_in_bytes"
	if cgroups.IsCgroup2UnifiedMode() {
		usageFile = "memory.current"
	}
	if usage := readUint(t, cgroupFile(t, "memory", path, usageFile)); usage < 16<<20 {
		t.Errorf("the cgroup's memory usage is %d bytes after the boot: the guest's RAM is charged elsewhere", usage)
	}
}

// A QEMU that fails to start leaves no cgroup behind.
func TestStartFailureRemovesCgroup(t *testing.T) {
	requireCgroups(t)
	cfg := testConfig(t)
	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, bytes.Repeat([]byte{0xff}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Kernel, cfg.Initrd, cfg.Cmdline = junk, "", ""
	path := testenv.CgroupParent(t) + "/vm"
	cfg.Cgroup = &CgroupConfig{Path: path}
	if _, err := Start(context.Background(), cfg); err == nil {
		t.Fatal("Start with a junk kernel succeeded")
	}
	if _, err := os.Stat(cgroupFile(t, "memory", path, "")); err == nil {
		t.Errorf("cgroup %s left after a failed Start", path)
	}
}

func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		accel Accel
		ram   int
		want  int64
	}{
		{TCG, 256, (256 + 256 + tcgTBSizeMB) * mib},
		{"", 64, (64 + 256 + tcgTBSizeMB) * mib},
		{KVM, 256, (256 + 256) * mib},
		{KVM, 4096, (4096 + 1024) * mib},
		{TCG, 8192, (8192 + 2048 + tcgTBSizeMB) * mib},
	} {
		if got := (Config{Accel: tc.accel, MemoryMB: tc.ram}).MemoryLimit(); got != tc.want {
			t.Errorf("MemoryLimit(%q, %d MiB) = %d MiB, want %d MiB", tc.accel, tc.ram, got/mib, tc.want/mib)
		}
	}
}
