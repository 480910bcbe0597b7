package containerdriver

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// RemoveAll kills and removes every container and pod sandbox on the node: the
// container part of `cloudbox server --cleanup`.
func (d *Driver) RemoveAll(ctx context.Context, dataDir string) error {
	tasks, err := d.ctrs.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, st := range tasks {
		if _, err := d.ctrs.Recover(st.ID); err != nil && !st.Adopted {
			d.log.Debug("recover before cleanup", zap.String("container", st.ID), zap.Error(err))
		}
		if err := d.Stop(ctx, st.ID, 0); err != nil {
			errs = append(errs, err)
		}
		if err := d.Destroy(ctx, st.ID); err != nil {
			errs = append(errs, err)
		}
	}
	pods, _ := os.ReadDir(filepath.Join(dataDir, "containers", "pods"))
	for _, p := range pods {
		if err := d.ReleaseSandbox(ctx, p.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	removeCgroupParent(d.clock, d.cgroupParent)
	return errors.Join(errs...)
}

// removeCgroupParent removes the parent cgroup and everything under it from every
// hierarchy, so the uninstall leaves the host's cgroup tree as it was. A pod cgroup
// that outlived its container's state (the server was killed between the two) is
// removed too, and a process still in one is killed first: whatever runs under
// cloudbox's parent is cloudbox's, as k3s's killall treats its own.
func removeCgroupParent(clk agent.Clock, parent string) {
	parent = strings.Trim(parent, "/")
	if parent == "" {
		return
	}
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", parent))
	roots = append(roots, filepath.Join("/sys/fs/cgroup", parent), filepath.Join("/sys/fs/cgroup/unified", parent))
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// Deepest first: a cgroup can only go once its children have.
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			removeCgroupDir(clk, d)
		}
	}
}

// removeCgroupDir kills what is left in one cgroup and removes it; the kernel frees a
// cgroup shortly after its last task is reaped, so rmdir is retried for a while.
func removeCgroupDir(clk agent.Clock, dir string) {
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for deadline := clk.Now().Add(5 * time.Second); ; clock.Sleep(clk, 20*time.Millisecond, nil) {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) || !errors.Is(err, syscall.EBUSY) || clk.Now().After(deadline) {
			return
		}
	}
}
