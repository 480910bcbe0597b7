package vmdriver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/hypervisor"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// KillAll kills every QEMU that a node with this state dir left running (VMs outlive
// the server by design), waits for each to exit and removes its cgroup: the VM part of
// `cloudbox server --cleanup`, which then removes the files.
func KillAll(ctx context.Context, stateDir string, log *zap.Logger) error {
	dirs, err := filepath.Glob(filepath.Join(stateDir, "instances", "*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		if err := killVM(ctx, dir, log); err != nil {
			errs = append(errs, err)
			continue
		}
		// A VM that died while no agent watched leaves its cgroup too.
		if r, err := readTaskRecord(dir); err == nil {
			if err := removeCgroup(r.Cgroup); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if _, err := os.Stat(stateDir); err == nil && len(errs) == 0 {
		log.Info("every VM of this node is stopped", zap.String("state_dir", stateDir))
	}
	return errors.Join(errs...)
}

// killVM kills the QEMU of an instance directory, if one runs, and waits until it is
// gone. It runs without a Driver (server --cleanup), so on the machine's clock.
func killVM(ctx context.Context, dir string, log *zap.Logger) error {
	vm, err := hypervisor.Attach(ctx, dir)
	if errors.Is(err, hypervisor.ErrNotRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	defer vm.Close()
	if err := vm.Kill(); err != nil {
		return err
	}
	if !exitedWithin(clock.Real{}, vm, 10*time.Second) {
		return fmt.Errorf("QEMU pid %d (%s) still runs 10 s after SIGKILL", vm.PID(), dir)
	}
	log.Info("killed a VM", zap.String("dir", dir), zap.Int("pid", vm.PID()))
	return nil
}

// exitedWithin waits up to d on clk for vm's QEMU to exit and reports whether it did.
func exitedWithin(clk agent.Clock, vm *hypervisor.VM, d time.Duration) bool {
	return !clock.Sleep(clk, d, vm.Done())
}
