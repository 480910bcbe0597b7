package vmdriver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/hypervisor"
)

// KillAll kills every QEMU that a node with this state dir left running (VMs outlive
// the server by design) and waits for each to exit: the VM part of
// `cloudbox server --cleanup`, which then removes the files.
func KillAll(ctx context.Context, stateDir string, log *zap.Logger) error {
	dirs, err := filepath.Glob(filepath.Join(stateDir, "instances", "*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		vm, err := hypervisor.Attach(ctx, dir)
		if errors.Is(err, hypervisor.ErrNotRunning) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := vm.Kill(); err != nil {
			errs = append(errs, err)
		}
		select {
		case <-vm.Done():
			log.Info("killed a VM", zap.String("dir", dir), zap.Int("pid", vm.PID()))
		case <-time.After(10 * time.Second):
			errs = append(errs, fmt.Errorf("QEMU pid %d (%s) still runs 10 s after SIGKILL", vm.PID(), dir))
		}
		_ = vm.Close()
	}
	if _, err := os.Stat(stateDir); err == nil && len(errs) == 0 {
		log.Info("every VM of this node is stopped", zap.String("state_dir", stateDir))
	}
	return errors.Join(errs...)
}
