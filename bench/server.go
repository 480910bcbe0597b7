package bench

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/cloudbox/cloudbox/cloud/client"
)

// server is a `cloudbox server` a benchmark started, in a data dir of its own.
type server struct {
	cmd          *exec.Cmd
	client       *client.Client
	done         chan struct{}
	bin, dataDir string
	cgroupParent string
}

// stop interrupts the server and waits for it to exit, killing it after 10 s.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// remove stops the server and removes what it left on the host (containers, its
// cgroup, bridge and firewall chains) and its data dir, as `cloudbox server
// --cleanup` does; errors go to stderr, since the figures are already printed.
func (s *server) remove() {
	s.stop()
	cmd := exec.Command(s.bin, "--log-level", "warn", "server", "--cleanup", "--data-dir", s.dataDir, "--cgroup-parent", s.cgroupParent)
	cmd.Stderr = os.Stderr
	_ = cmd.Run()
}

// startServer runs `cloudbox server` on a free loopback port, its pods under
// cgroupParent, and returns once /readyz answers, with the time that took. The
// caller removes it.
func startServer(ctx context.Context, bin, dataDir, cgroupParent string, extra ...string) (*server, time.Duration, error) {
	start := time.Now()
	args := append([]string{"--log-level", "warn", "server", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--node-name", "bench-node",
		"--cgroup-parent", cgroupParent}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	s := &server{cmd: cmd, done: make(chan struct{}), bin: bin, dataDir: dataDir, cgroupParent: cgroupParent}
	go func() { _ = cmd.Wait(); close(s.done) }()
	// Polling is the measurement here: the first moment the server answers ready.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.remove()
			return nil, 0, errors.New("server exited during start-up")
		default:
		}
		if s.client == nil {
			if cfg, err := client.LoadConfigFile(filepath.Join(dataDir, "admin.config")); err == nil {
				s.client, _ = client.New(cfg)
			}
		}
		if s.client != nil {
			if body, err := s.client.Raw(ctx, http.MethodGet, "/readyz"); err == nil {
				body.Close()
				return s, time.Since(start), nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.remove()
	return nil, 0, errors.New("server not ready after 30s")
}
