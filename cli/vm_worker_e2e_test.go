package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/testenv"
	"github.com/cloudbox/cloudbox/internal/testguest"
)

// TestVMDeletedWhileWorkerIsDown: a VM runs on a worker that is a process of its own
// beside its master; the worker is killed with -9 and QEMU runs on without it; the VM
// is deleted through the master meanwhile; once the worker is back it stops that
// QEMU, removes the instance's files and lets the launcher pod go. (In an all-in-one
// server the API dies with the agent, so nothing could be deleted while it is down.)
func TestVMDeletedWhileWorkerIsDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a node agent")
	}
	guest := testguest.Build(t)

	// The master: the control plane only. waitReady's /readyz answers once its
	// informers have synced; a master has no agent to wait for.
	masterDir, workerDir := t.TempDir(), t.TempDir()
	masterCG, workerCG := testenv.CgroupParent(t), testenv.CgroupParent(t)
	master := startServerProcess(t, masterDir, masterCG, "--role", "master")
	cl := waitReady(t, master, masterDir)
	cfg, err := client.LoadConfigFile(filepath.Join(masterDir, "admin.config"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(masterDir, "join-token"))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, config: filepath.Join(masterDir, "admin.config"), dir: masterDir}

	// The worker, in a data dir of its own; the flags after startServerProcess's
	// defaults override them.
	workerArgs := []string{"--role", "worker", "--join", cfg.Server, "--token", strings.TrimSpace(string(token)),
		"--node-name", "e2e-worker", "--vm-accel", "tcg", "--pod-network", "none"}
	worker := startServerProcess(t, workerDir, workerCG, workerArgs...)
	t.Cleanup(func() {
		worker.kill()
		master.kill()
		for _, d := range []struct{ dir, cgroup string }{{workerDir, workerCG}, {masterDir, masterCG}} {
			if out, errOut, err := c.run("", "server", "--cleanup", "--data-dir", d.dir, "--cgroup-parent", d.cgroup); err != nil {
				t.Errorf("cleanup of %s: %v\n%s%s", d.dir, err, out, errOut)
			}
		}
		if left := qemusOf(workerDir); len(left) > 0 {
			t.Errorf("QEMU left after cleanup: %v", left)
		}
		if left := processesIn(t, workerCG); len(left) > 0 {
			t.Errorf("processes left in the worker's cgroup after cleanup: %v", left)
		}
	})
	waitNodeReady(t, cl, worker, workerDir, "e2e-worker")

	c.must("image", "import", "--kernel", guest.Kernel, "--initrd", guest.Initrd, "--cmdline", guest.Cmdline, "--name", "guest")
	c.must("flavor", "create", "e2e.small", "--vcpus", "1", "--ram", "256", "--disk", "0")
	if out := c.must("vm", "create", "w1", "--image", "guest", "--flavor", "e2e.small", "--wait", "--timeout", "3m"); !strings.Contains(out, "ACTIVE") {
		t.Fatalf("vm create --wait:\n%s", out)
	}
	inst := waitInstance(t, cl, "w1", "ACTIVE with a PID", func(i *api.Instance) bool {
		return i.Status.State == api.InstanceActive && i.Status.PID > 0
	})
	if inst.Status.NodeName != "e2e-worker" {
		t.Fatalf("the VM runs on %q, not on the worker", inst.Status.NodeName)
	}
	waitConsole(t, cl, "w1", testguest.Ready)
	pid := fmt.Sprint(inst.Status.PID)
	// QEMU runs in its launcher pod's cgroup, under the worker's --cgroup-parent.
	podName := api.InstancePodName("w1")
	launcher := waitPodCond(t, cl, podName, "Running", running)
	podCgroup := workerCG + "/" + launcher.UID + "/"
	if b, err := os.ReadFile("/proc/" + pid + "/cgroup"); err != nil || len(b) == 0 || strings.Count(string(b), podCgroup) != strings.Count(string(b), "\n") {
		t.Errorf("QEMU (pid %s) is not in %s in every hierarchy: %v\n%s", pid, podCgroup, err, b)
	}
	dirs, _ := filepath.Glob(filepath.Join(workerDir, "agent", "vm", "instances", "*"))
	if len(dirs) != 1 {
		t.Fatalf("instance directories on the worker: %v", dirs)
	}
	instDir := dirs[0]

	// kill -9 of the worker: QEMU runs on.
	worker.kill()
	if !qemuRuns(pid) {
		t.Fatalf("QEMU (pid %s) died with the worker", pid)
	}

	// The instance goes at once (it has no finalizer); its launcher pod is marked for
	// deletion and waits for its node, which is down, to stop it.
	c.must("vm", "delete", "w1")
	pod := waitPodCond(t, cl, podName, "marked for deletion", func(p *api.Pod) bool { return p.DeletionTimestamp != nil })
	if _, err := cl.Get(context.Background(), instanceKind, "default", "w1"); !client.IsNotFound(err) {
		t.Fatalf("instance w1 after vm delete: %v", err)
	}
	if !qemuRuns(pid) {
		t.Fatalf("QEMU (pid %s) stopped while its worker was down", pid)
	}

	// The worker comes back: it stops the VM, removes its files and lets the pod go.
	worker = startServerProcess(t, workerDir, workerCG, workerArgs...)
	waitNodeReady(t, cl, worker, workerDir, "e2e-worker")
	ctx, cancel := context.WithTimeout(context.Background(), vmWait)
	defer cancel()
	if err := waitGone(ctx, cl, pod); err != nil {
		t.Fatalf("launcher pod %s: %v\nworker log:\n%s", podName, err, workerLogTail(workerDir))
	}
	eventually(t, "QEMU stopped", func() error {
		if qemuRuns(pid) {
			return fmt.Errorf("QEMU (pid %s) still runs", pid)
		}
		return nil
	})
	eventually(t, "the instance's files removed", func() error {
		if _, err := os.Stat(instDir); err == nil {
			entries, _ := os.ReadDir(instDir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return fmt.Errorf("%s still holds %v", instDir, names)
		}
		return nil
	})
	eventually(t, "the VM's cgroup removed", func() error {
		if dirs := cgroupDirs(workerCG + "/" + launcher.UID); len(dirs) > 0 {
			return fmt.Errorf("still there: %v", dirs)
		}
		return nil
	})
	if _, err := cl.Get(context.Background(), instanceKind, "default", "w1"); !client.IsNotFound(err) {
		t.Errorf("instance w1 after the worker's restart: %v", err)
	}
	if left := qemusOf(workerDir); len(left) > 0 {
		t.Errorf("QEMU of the worker running after the deleted VM was stopped (a new one started?): %v", left)
	}
}

// waitNodeReady watches node name until it is Ready and the server process sp (whose
// data dir is dir) has joined, and fails at once if sp exits. A node that was Ready
// before its agent was killed stays Ready until it misses heartbeats, so Ready alone
// says nothing of the new process: the heartbeats after its "worker joined" do.
func waitNodeReady(t *testing.T, cl *client.Client, sp *serverProcess, dir, name string) {
	t.Helper()
	k, _ := api.LookupKind("nodes")
	ctx, cancel := context.WithTimeout(context.Background(), vmWait)
	defer cancel()
	events, err := cl.Watch(ctx, k, "", client.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case <-sp.done:
			t.Fatalf("the server of node %s exited:\n%s", name, workerLogTail(dir))
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("node %s not Ready within %s\n%s", name, vmWait, workerLogTail(dir))
			}
			if n, isNode := ev.Object.(*api.Node); isNode && n.IsReady() && workerJoined(dir) {
				return
			}
		}
	}
}

// workerJoined says whether the server log in dir shows its latest start has joined:
// "worker joined" after the last "starting cloudbox".
func workerJoined(dir string) bool {
	b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
	s := string(b)
	start := strings.LastIndex(s, "starting cloudbox")
	return start >= 0 && strings.Contains(s[start:], "worker joined")
}

// workerLogTail is the end of the server log in dir.
func workerLogTail(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
	return tail(string(b), 60)
}

// qemuRuns says whether pid is a live (not zombie) QEMU process.
func qemuRuns(pid string) bool {
	cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
	return err == nil && strings.Contains(string(cmdline), "qemu") && !isZombie(pid)
}

// qemusOf lists the live QEMU processes whose command line names a path in dir.
func qemusOf(dir string) []string {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []string
	for _, p := range procs {
		b, err := os.ReadFile(p)
		pid := strings.Split(p, "/")[2]
		if err == nil && strings.Contains(string(b), "qemu") && strings.Contains(string(b), dir) && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cgroupDirs lists the directories of the cgroup at path (absolute) in every hierarchy.
func cgroupDirs(path string) []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + path)
	if _, err := os.Stat("/sys/fs/cgroup" + path); err == nil {
		dirs = append(dirs, "/sys/fs/cgroup"+path)
	}
	return dirs
}
