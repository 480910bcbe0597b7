package compat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// commandTimeout bounds one client command, so that a hung one fails its test
// instead of stalling the run.
const commandTimeout = 2 * time.Minute

// cluster is an all-in-one cloudbox server in a process of its own, with its own data
// dir and cgroup parent, and no pod network or VMs: what a client sees is its API.
type cluster struct {
	dir          string // the server's data dir; admin.config is in it
	cgroupParent string
	cacheDir     string // kubectl's discovery cache, apart from the user's
}

// startCluster starts a server on a free loopback port and waits for its node to be
// Ready. When the test ends it stops the server and removes everything the server
// made (`server --cleanup`); if the test failed, it logs the server's log.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the server runs containers in cgroups of its own")
	}
	c := &cluster{dir: t.TempDir(), cgroupParent: "/cloudbox-compat-" + randomHex(t), cacheDir: t.TempDir()}
	logPath := filepath.Join(t.TempDir(), "server.log") // outside the data dir, which --cleanup removes
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	server := exec.Command(cloudboxBin, "server", "--data-dir", c.dir, "--listen", "127.0.0.1:0",
		"--node-name", "compat", "--cgroup-parent", c.cgroupParent, "--pod-network", "none", "--vm-accel", "off")
	server.Stdout, server.Stderr = logf, logf
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = server.Wait(); close(exited) }()
	t.Cleanup(func() {
		stop(server, exited)
		if out, err := c.cloudbox(context.Background(), "server", "--cleanup", "--data-dir", c.dir, "--cgroup-parent", c.cgroupParent); err != nil {
			t.Errorf("server --cleanup: %v\n%s", err, out)
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("server log:\n%s", log)
		}
	})

	// Wait returns early if the server exits, rather than waiting out its timeout.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	if out, err := c.cloudbox(ctx, "wait", "--for=condition=Ready", "node", "--all", "--timeout", "2m"); err != nil {
		t.Fatalf("waiting for the node to be Ready: %v\n%s", err, out)
	}
	return c
}

// stop ends the server with SIGTERM, as a service manager would, and with SIGKILL if
// it has not exited in 30 s.
func stop(server *exec.Cmd, exited <-chan struct{}) {
	_ = server.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = server.Process.Kill()
		<-exited
	}
}

// cloudbox runs the cloudbox CLI against the cluster and returns its combined output.
func (c *cluster) cloudbox(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	args = append([]string{"--config", c.adminConfig()}, args...)
	return exec.CommandContext(ctx, cloudboxBin, args...).CombinedOutput()
}

// adminConfig is the kubeconfig the server writes: its URL, CA and admin token.
func (c *cluster) adminConfig() string { return filepath.Join(c.dir, "admin.config") }

// result is what a client command printed, and how it exited.
type result struct {
	stdout, stderr string
	err            error
}

// kubectl runs the built kubectl against the cluster (KUBECONFIG=admin.config).
func (c *cluster) kubectl(args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlBin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.adminConfig(), "KUBECACHEDIR="+c.cacheDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// importBusybox builds the busybox image the repository's manifests name
// (busybox:1.36) offline from Debian's busybox-static, as scripts/up.sh does, and
// imports it into the node: their pods then run, and nothing is pulled from outside.
func (c *cluster) importBusybox(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("bash", repoPath("testdata", "images", "build-busybox.sh"), dir, "1.36").CombinedOutput(); err != nil {
		t.Fatalf("building the busybox image: %v\n%s", err, out)
	}
	if out, err := c.cloudbox(context.Background(), "image", "import", filepath.Join(dir, "busybox.tar")); err != nil {
		t.Fatalf("importing the busybox image: %v\n%s", err, out)
	}
}

// repoPath is a path in the cloudbox repository, which holds this module.
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{".."}, elem...)...)
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
