package vmdriver

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/hypervisor"
	"github.com/cloudbox/cloudbox/internal/testenv"
	"github.com/cloudbox/cloudbox/internal/testguest"
)

func TestCPUShares(t *testing.T) {
	for _, tc := range []struct {
		vcpus int
		want  uint64
	}{{0, 2}, {1, 64}, {2, 128}, {16, 1024}, {32, 2048}} {
		if got := cpuShares(tc.vcpus); got != tc.want {
			t.Errorf("cpuShares(%d) = %d, want %d", tc.vcpus, got, tc.want)
		}
	}
}

func TestCgroupPath(t *testing.T) {
	d := &Driver{cfg: Config{CgroupParent: "/cloudbox"}}
	if got := d.cgroupPath("a1b2", "a1b2.vm.0"); got != "/cloudbox/a1b2/a1b2.vm.0" {
		t.Errorf("cgroupPath = %q", got)
	}
}

// server --cleanup: KillAll kills a VM the agent left running and removes its cgroup,
// pod level included, so that the cgroup parent can go.
func TestKillAllRemovesCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	if _, err := exec.LookPath(hypervisor.DefaultQEMU); err != nil {
		t.Skipf("%s not installed (Debian: qemu-system-x86)", hypervisor.DefaultQEMU)
	}
	g := testguest.Build(t)
	stateDir := t.TempDir()
	dir := filepath.Join(stateDir, "instances", "0123456789abcdef")
	parent := testenv.CgroupParent(t)
	d := &Driver{cfg: Config{CgroupParent: parent}}
	cg := d.cgroupPath("pod-uid", "pod-uid.vm.0")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vm, err := hypervisor.Start(ctx, hypervisor.Config{Name: "killall", Dir: dir, VCPUs: 1, MemoryMB: 64,
		Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: g.Cmdline,
		Cgroup: &hypervisor.CgroupConfig{Path: cg, CPUShares: cpuShares(1)}})
	if err != nil {
		t.Fatal(err)
	}
	pid := vm.PID()
	t.Cleanup(func() {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); strings.Contains(string(b), dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// The server that started it is gone; QEMU serves one QMP client at a time.
	vm.Close()
	rec, _ := json.Marshal(taskRecord{Handle: agent.TaskHandle{ID: "pod-uid.vm.0", Driver: DriverName, PodUID: "pod-uid"}, Cgroup: cg})
	if err := os.WriteFile(filepath.Join(dir, taskFile), rec, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup"); !strings.Contains(string(b), ":"+cg+"\n") {
		t.Fatalf("QEMU is not in %s:\n%s", cg, b)
	}

	if err := KillAll(ctx, stateDir, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
		t.Fatalf("QEMU still runs after KillAll: %s", b)
	}
	for _, p := range []string{cg, filepath.Dir(cg)} {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + p)
		if len(dirs) > 0 {
			t.Errorf("cgroup %s left after KillAll: %v", p, dirs)
		}
	}
}
