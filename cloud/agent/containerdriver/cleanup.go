package containerdriver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
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
	removeCgroupParent(d.cgroupParent)
	return errors.Join(errs...)
}

// removeCgroupParent removes the (now empty) parent cgroup from every hierarchy, so
// the uninstall leaves the host's cgroup tree as it was.
func removeCgroupParent(parent string) {
	parent = strings.Trim(parent, "/")
	if parent == "" {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", parent))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", parent), filepath.Join("/sys/fs/cgroup/unified", parent))
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}
