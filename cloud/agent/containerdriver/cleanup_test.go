package containerdriver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/internal/clock"
	"github.com/cloudbox/cloudbox/internal/testenv"
)

// A pod cgroup left under the parent, with a process still in it (the server was
// killed after the container's state went but before its cgroup did), goes with the
// uninstall: the process is killed and the tree removed in every hierarchy.
func TestRemoveCgroupParentTakesStrayPodCgroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	parent := testenv.CgroupParent(t)
	leaf := filepath.Join("/sys/fs/cgroup/pids", parent, "pod-stray", "ctr")
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		t.Skipf("no cgroup v1 pids hierarchy here: %v", err)
	}
	empty := filepath.Join("/sys/fs/cgroup/memory", parent, "pod-empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}

	removeCgroupParent(clock.Real{}, parent)

	select {
	case err := <-exited:
		if err == nil {
			t.Error("the process in the stray pod cgroup ended on its own, not killed")
		}
	case <-time.After(10 * time.Second):
		t.Error("the process in the stray pod cgroup still runs after cleanup")
	}
	for _, d := range []string{filepath.Join("/sys/fs/cgroup/pids", parent), filepath.Join("/sys/fs/cgroup/memory", parent)} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left after cleanup: %v", d, err)
		}
	}
}
