package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/agent/containerdriver"
	"github.com/cloudbox/cloudbox/cloud/agent/podnet"
	"github.com/cloudbox/cloudbox/cloud/agent/vmdriver"
	"github.com/cloudbox/cloudbox/runtime/image"
)

// Cleanup is the uninstall path (what k3s's killall and uninstall scripts do): it
// stops the server running on dataDir, if any, and removes the state it kept there.
// VMs and containers go first (VMs before containers, whose removal takes the
// emptied cgroup parent with it), then the pod network, then the files.
func Cleanup(dataDir, cgroupParent string, log *zap.Logger) error {
	if dataDir == "" || dataDir == "/" {
		return fmt.Errorf("refusing to clean up data dir %q", dataDir)
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := stopRunningServer(filepath.Join(dataDir, "server.pid"), log); err != nil {
		return err
	}
	if err := vmdriver.KillAll(context.Background(), filepath.Join(dataDir, "agent", "vm"), log); err != nil {
		return fmt.Errorf("stopping VMs: %w", err)
	}
	if err := removeContainers(dataDir, cgroupParent, log); err != nil {
		return err
	}
	if err := podnet.Cleanup(filepath.Join(dataDir, "agent")); err != nil {
		return fmt.Errorf("removing the pod network: %w", err)
	}
	entries, err := os.ReadDir(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dataDir, e.Name())); err != nil {
			return err
		}
	}
	log.Info("removed cloudbox state", zap.String("data_dir", dataDir))
	return os.Remove(dataDir)
}

// removeContainers kills and removes the containers and pod sandboxes the node's
// agent left running (they outlive the server by design).
func removeContainers(dataDir, cgroupParent string, log *zap.Logger) error {
	if _, err := os.Stat(filepath.Join(dataDir, "containers")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// A server killed a moment before may still be exiting and holding the image
	// store: give it a while.
	drv, err := containerdriver.New(containerdriver.Config{DataDir: dataDir, CgroupParent: cgroupParent, Logger: log,
		Images: image.Options{LockWait: 15 * time.Second}})
	if err != nil {
		return fmt.Errorf("open the container runtime to clean it up: %w", err)
	}
	defer drv.Close()
	if err := drv.RemoveAll(context.Background(), dataDir); err != nil {
		return fmt.Errorf("removing containers: %w", err)
	}
	log.Info("removed every container and pod sandbox")
	return nil
}

// stopRunningServer sends SIGTERM to the server in the pid file (checking it is a
// cloudbox process, since pids are reused), waits, and kills it if it lingers.
func stopRunningServer(pidFile string, log *zap.Logger) error {
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || pid == os.Getpid() {
		return nil
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "cloudbox") {
		return nil // stale pid file
	}
	log.Info("stopping the running server", zap.Int("pid", pid))
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Warn("server did not stop in 30s; killing it", zap.Int("pid", pid))
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return nil
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
