package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/cloud/server"
	"github.com/cloudbox/cloudbox/internal/testenv"
	"github.com/cloudbox/cloudbox/internal/testimage"
)

// containerCluster is an in-process all-in-one server that runs real containers,
// with the busybox image imported.
func containerCluster(t *testing.T, mirrors map[string]string) (*cluster, *client.Client) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containers")
	}
	if _, err := testimage.Busybox(); errors.Is(err, testimage.ErrNoBusybox) {
		t.Skipf("%v", err)
	}
	dir := t.TempDir()
	cgroup := testenv.CgroupParent(t)
	s, err := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0", NodeName: "node-1", CgroupParent: cgroup,
		RegistryMirrors: mirrors, HeartbeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	c := &cluster{t: t, config: filepath.Join(dir, "admin.config"), dir: dir}
	t.Cleanup(func() {
		cancel()
		<-done
		if err := server.Cleanup(dir, cgroup, nil); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("server exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready")
	}
	cfg, err := client.LoadConfigFile(c.config)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if mirrors == nil {
		tarPath := filepath.Join(t.TempDir(), "busybox.tar")
		if err := testimage.WriteBusyboxTarball(tarPath, "docker.io/library/busybox:1.36"); err != nil {
			t.Fatal(err)
		}
		c.must("image", "import", tarPath)
	}
	return c, cl
}

func containerStatus(p *api.Pod, name string) *api.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func TestPodBehaviourWithRealContainers(t *testing.T) {
	c, cl := containerCluster(t, nil)
	c.must("apply", "-f", writeFile(t, "pods.yaml", `apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - {name: main, image: busybox:1.36, command: ["sh", "-c", "echo crashing; exit 1"]}
---
apiVersion: v1
kind: Pod
metadata: {name: blocked}
spec:
  restartPolicy: Never
  initContainers:
  - {name: setup, image: busybox:1.36, command: ["sh", "-c", "exit 2"]}
  containers:
  - {name: main, image: busybox:1.36, command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: hungry}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "head -c 200m /dev/zero | tail >/dev/null"]
    resources: {limits: {memory: 32Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: flaky}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "touch /tmp/alive; exec sleep 3600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/alive"]}
      periodSeconds: 1
      failureThreshold: 1
    readinessProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      periodSeconds: 1
`))

	// A crashing container restarts with back-off and shows CrashLoopBackOff.
	p := waitPodCond(t, cl, "crasher", "CrashLoopBackOff", func(p *api.Pod) bool {
		cs := containerStatus(p, "main")
		return cs != nil && cs.RestartCount >= 1 && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	if cs := containerStatus(p, "main"); cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("crasher lastState: %+v", cs.LastTerminationState)
	}
	if out := c.must("get", "pod", "crasher"); !strings.Contains(out, "CrashLoopBackOff") {
		t.Errorf("get pod crasher:\n%s", out)
	}
	if out := c.must("logs", "crasher", "--previous"); !strings.Contains(out, "crashing") {
		t.Errorf("logs --previous: %q", out)
	}

	// An init container's failure blocks the main container.
	p = waitPodCond(t, cl, "blocked", "Failed", func(p *api.Pod) bool { return p.Status.Phase == api.PodFailed })
	if cs := containerStatus(p, "main"); cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil) {
		t.Errorf("main container ran although its init container failed: %+v", cs.State)
	}

	// A memory limit is enforced and reported.
	p = waitPodCond(t, cl, "hungry", "OOMKilled", func(p *api.Pod) bool {
		cs := containerStatus(p, "main")
		return cs != nil && cs.State.Terminated != nil
	})
	if term := containerStatus(p, "main").State.Terminated; term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Errorf("hungry terminated: %+v", term)
	}

	// Readiness follows the probe both ways.
	waitPodCond(t, cl, "flaky", "running, not ready", func(p *api.Pod) bool {
		cs := containerStatus(p, "main")
		return cs != nil && cs.State.Running != nil && !cs.Ready
	})
	c.must("exec", "flaky", "--", "touch", "/tmp/ready")
	waitPodCond(t, cl, "flaky", "Ready", func(p *api.Pod) bool {
		r := p.Status.Condition(api.PodReady)
		return r != nil && r.Status == api.ConditionTrue
	})
	c.must("exec", "flaky", "--", "rm", "/tmp/ready")
	waitPodCond(t, cl, "flaky", "not Ready", func(p *api.Pod) bool {
		r := p.Status.Condition(api.PodReady)
		return r != nil && r.Status == api.ConditionFalse
	})
	// A failing liveness probe restarts the container.
	c.must("exec", "flaky", "--", "rm", "/tmp/alive")
	waitPodCond(t, cl, "flaky", "restarted by its liveness probe", func(p *api.Pod) bool {
		cs := containerStatus(p, "main")
		return cs != nil && cs.RestartCount >= 1
	})

	out := c.must("delete", "pod", "crasher", "blocked", "hungry", "flaky", "--grace-period", "1")
	if strings.Count(out, "deleted") != 4 {
		t.Errorf("delete:\n%s", out)
	}
}

// TestPullThroughAMirror pulls busybox:1.36 for a pod through a real registry on
// loopback (Debian's docker-registry) set as the docker.io mirror, as an offline
// site would.
func TestPullThroughAMirror(t *testing.T) {
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Skip("needs Debian's docker-registry")
	}
	img, err := testimage.Busybox()
	if err != nil {
		t.Skipf("%v", err)
	}
	port := freePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%d}\n", dir, port)
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644)
	reg := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Process.Kill(); reg.Wait() })
	ref, _ := name.NewTag(fmt.Sprintf("127.0.0.1:%d/library/busybox:1.36", port), name.Insecure)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := remote.Write(ref, img)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("push to the loopback registry: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // an external process coming up: nothing to wait on but its answer
	}

	c, cl := containerCluster(t, map[string]string{"docker.io": fmt.Sprintf("http://127.0.0.1:%d", port)})
	c.must("run", "pulled", "--image", "busybox:1.36", "--", "sleep", "3600")
	waitPodCond(t, cl, "pulled", "Running", running)
	if out := c.must("image", "ls"); !strings.Contains(out, "docker.io/library/busybox:1.36") {
		t.Fatalf("image ls after the pull:\n%s", out)
	}
	c.must("delete", "pod", "pulled", "--grace-period", "1")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
