package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/testenv"
	"github.com/cloudbox/cloudbox/internal/testimage"
)

// serverProcess is a cloudbox server in a process of its own (this test binary
// standing in for cloudbox), so the test can kill -9 it.
type serverProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startServerProcess(t *testing.T, dir, cgroupParent string, extra ...string) *serverProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(dir, "admin.config"))
	args := append([]string{"--log-level", "debug", "server", "--data-dir", dir, "--listen", "127.0.0.1:0",
		"--node-name", "e2e-node", "--cgroup-parent", cgroupParent, "--heartbeat-interval", "1s", "--pod-network", "none", "--vm-accel", "off"}, extra...)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "CLOUDBOX_TEST_MAIN=1")
	logf, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sp := &serverProcess{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(sp.done) }()
	t.Cleanup(func() { sp.kill() })
	return sp
}

// startCleanedUp is startServerProcess with the cluster to run the CLI against; when
// the test ends the server is killed and `server --cleanup` removes what it left.
func startCleanedUp(t *testing.T, dir, cgroupParent string, extra ...string) (*serverProcess, *cluster) {
	t.Helper()
	sp := startServerProcess(t, dir, cgroupParent, extra...)
	c := &cluster{t: t, config: filepath.Join(dir, "admin.config"), dir: dir}
	t.Cleanup(func() {
		sp.kill()
		if out, errOut, err := c.run("", "server", "--cleanup", "--data-dir", dir, "--cgroup-parent", cgroupParent); err != nil {
			t.Errorf("cleanup: %v\n%s%s", err, out, errOut)
		}
	})
	return sp, c
}

func (s *serverProcess) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// waitReady waits for the server's admin.config and for its node to be Ready.
func waitReady(t *testing.T, sp *serverProcess, dir string) *client.Client {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var cl *client.Client
	for time.Now().Before(deadline) {
		select {
		case <-sp.done:
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("server exited:\n%s", log)
		default:
		}
		if cl == nil {
			if cfg, err := client.LoadConfigFile(filepath.Join(dir, "admin.config")); err == nil {
				cl, _ = client.New(cfg)
			}
		}
		if cl != nil {
			if rc, err := cl.Raw(context.Background(), "GET", "/readyz"); err == nil {
				rc.Close()
				return cl
			}
		}
		time.Sleep(20 * time.Millisecond) // an external process: nothing to wait on but its answer
	}
	t.Fatal("server not ready within 60s")
	return nil
}

// processesIn lists the host PIDs of the live processes in cgroups under parent.
// Zombies are left out: a container adopted after a restart is not the new server's
// child, so once it exits it waits for the host's init to reap it.
func processesIn(t *testing.T, parent string) []string {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	var pids []string
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), parent+"/") {
			pid := strings.Split(p, "/")[2]
			if isZombie(pid) {
				continue
			}
			pids = append(pids, pid)
		}
	}
	sort.Strings(pids)
	return pids
}

// isZombie says whether the process has exited and waits to be reaped (the host's
// init reaps what the server adopted; in some sandboxes it never does).
func isZombie(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// waitPodPhase watches a pod until cond holds.
func waitPodCond(t *testing.T, cl *client.Client, name string, what string, cond func(*api.Pod) bool) *api.Pod {
	t.Helper()
	k, _ := api.LookupKind("pods")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	events, err := cl.Watch(ctx, k, "default", client.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var last *api.Pod
	for ev := range events {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if p, ok := ev.Object.(*api.Pod); ok && ev.Type != "BOOKMARK" {
			last = p
			if cond(p) {
				return p
			}
		}
	}
	t.Fatalf("pod %s never became %s; last status: %+v", name, what, last.Status)
	return nil
}

func running(p *api.Pod) bool {
	return p.Status.Phase == api.PodRunning && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil
}

const sleeperManifest = `apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  containers:
  - name: main
    image: busybox:1.36
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo started in $(hostname); exec sleep 3600"]
`

// TestContainersRunAndSurviveServerKill runs a real pod through the binary: image
// import, logs, exec, then kill -9 of the server while the pod runs; the restarted
// server adopts the same container (same PIDs) instead of starting another.
func TestContainersRunAndSurviveServerKill(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containers")
	}
	dir := t.TempDir()
	tarPath := filepath.Join(t.TempDir(), "busybox.tar")
	if err := testimage.WriteBusyboxTarball(tarPath, "docker.io/library/busybox:1.36"); errors.Is(err, testimage.ErrNoBusybox) {
		t.Skipf("%v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	cgroup := testenv.CgroupParent(t)
	sp := startServerProcess(t, dir, cgroup)
	cl := waitReady(t, sp, dir)
	c := &cluster{t: t, config: filepath.Join(dir, "admin.config"), dir: dir}
	t.Cleanup(func() {
		sp.kill()
		out, errOut, err := c.run("", "server", "--cleanup", "--data-dir", dir)
		if err != nil {
			t.Errorf("cleanup: %v\n%s%s", err, out, errOut)
		}
		if left := processesIn(t, cgroup); len(left) > 0 {
			t.Errorf("processes left after cleanup: %v", left)
		}
	})

	if out := c.must("image", "import", tarPath); !strings.Contains(out, "imported docker.io/library/busybox:1.36") {
		t.Fatalf("image import: %s", out)
	}
	if out := c.must("image", "ls"); !strings.Contains(out, "docker.io/library/busybox:1.36") {
		t.Fatalf("image ls: %s", out)
	}
	c.must("apply", "-f", writeFile(t, "sleeper.yaml", sleeperManifest))
	pod := waitPodCond(t, cl, "sleeper", "Running", running)
	if pod.Status.HostIP == "" || pod.Status.StartTime == nil {
		t.Errorf("status lacks hostIP or startTime: %+v", pod.Status)
	}

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(c.must("logs", "sleeper"), "started in sleeper") {
		if time.Now().After(deadline) {
			t.Fatalf("logs: %q", c.must("logs", "sleeper"))
		}
		time.Sleep(50 * time.Millisecond) // the container writes its line after it starts
	}
	if out := c.must("exec", "sleeper", "--", "cat", "/etc/hostname"); strings.TrimSpace(out) != "sleeper" {
		t.Fatalf("exec cat /etc/hostname: %q", out)
	}
	_, _, err := c.run("", "exec", "sleeper", "--", "sh", "-c", "exit 3")
	var coder interface{ ExitCode() int }
	if !errors.As(err, &coder) || coder.ExitCode() != 3 {
		t.Fatalf("exec exit code: %v", err)
	}

	before := processesIn(t, cgroup)
	if len(before) == 0 {
		t.Fatal("no container processes found under the test's cgroup")
	}
	sp.kill()
	for _, pid := range before {
		if _, err := os.Stat("/proc/" + pid); err != nil {
			t.Fatalf("container process %s died with the server", pid)
		}
	}
	sp = startServerProcess(t, dir, cgroup)
	cl = waitReady(t, sp, dir)
	// The restarted agent posts status again; the container is the same one.
	waitPodCond(t, cl, "sleeper", "Running after the restart", func(p *api.Pod) bool {
		return running(p) && p.Status.ContainerStatuses[0].RestartCount == 0
	})
	if after := processesIn(t, cgroup); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("processes changed across the restart: before %v, after %v", before, after)
	}
	if out := c.must("exec", "sleeper", "--", "echo", "still here"); strings.TrimSpace(out) != "still here" {
		t.Fatalf("exec after restart: %q", out)
	}

	c.must("delete", "pod", "sleeper", "--grace-period", "1")
	if left := processesIn(t, cgroup); len(left) > 0 {
		t.Fatalf("processes left after the pod was deleted: %v", left)
	}
}
