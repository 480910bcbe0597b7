package containerdriver

import (
	"context"
	"errors"
	"os"
	"path/filepath"

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
	return errors.Join(errs...)
}
