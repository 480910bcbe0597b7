package container

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nsIDs prints the container's net, ipc and uts namespace identities.
const nsIDs = "for n in net ipc uts; do readlink /proc/self/ns/$n; done; hostname"

func TestPodContainersShareNamespaces(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	podID := uniqueID(t, "pod")
	pod, err := m.CreatePod(PodConfig{ID: podID, Hostname: "podhost"})
	if err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if again, err := m.CreatePod(PodConfig{ID: podID, Hostname: "podhost"}); err != nil || again.NetNSPath != pod.NetNSPath {
		t.Fatalf("second CreatePod: %+v, %v", again, err)
	}
	netID, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}

	first := busybox(t, "sh", "-c", "echo shared > /dev/shm/x; sleep 60")
	first.Pod = podID
	startLong(t, m, first)
	second := busybox(t, "sh", "-c", "sleep 0.2; "+nsIDs+"; cat /dev/shm/x; grep -c : /proc/net/dev")
	second.Pod = podID
	exit, log := run(t, m, second)
	if exit.Code != 0 {
		t.Fatalf("exit %+v, log %q", exit, log)
	}
	fromFirst, code := execOut(t, m, first.ID, "sh", "-c", nsIDs)
	if code != 0 {
		t.Fatalf("exec: %d %q", code, fromFirst)
	}
	lines := strings.Split(log, "\n")
	if got := strings.Join(lines[:4], "\n") + "\n"; got != fromFirst {
		t.Errorf("second container's namespaces\n%s\ndiffer from the first's\n%s", got, fromFirst)
	}
	if lines[3] != "podhost" {
		t.Errorf("hostname %q, want podhost", lines[3])
	}
	if lines[0] == netID {
		t.Errorf("pod shares the host's network namespace %s", netID)
	}
	if lines[4] != "shared" {
		t.Errorf("/dev/shm not shared: %q", log)
	}
	if lines[5] != "1" {
		t.Errorf("the pod's netns should hold only lo: %q", log)
	}
	// The network plugin's view: the pod's netns file is that namespace.
	st, err := m.Inspect(first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.NetNSPath != pod.NetNSPath {
		t.Errorf("NetNSPath %q, want the pod's %q", st.NetNSPath, pod.NetNSPath)
	}
	if !strings.HasSuffix(st.CgroupPath, "/"+podID+"/"+first.ID) {
		t.Errorf("cgroup %s not under the pod", st.CgroupPath)
	}

	// The pod cannot go while it has containers; after that its cgroup
	// level and mounts go too.
	if err := m.RemovePod(podID); !errors.Is(err, ErrConflict) {
		t.Errorf("RemovePod with containers: %v", err)
	}
	for _, id := range []string{first.ID, second.ID} {
		if err := m.Destroy(id); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range st.CgroupPaths {
		if _, err := os.Stat(filepath.Dir(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pod cgroup %s left: %v", filepath.Dir(p), err)
		}
	}
	if err := m.RemovePod(podID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pod.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod dir left: %v", err)
	}
	if _, err := m.GetPod(podID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetPod after remove: %v", err)
	}
}

func TestPodFiles(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	podID := uniqueID(t, "pod")
	hosts := "127.0.0.1 localhost\n10.1.2.3 web-0\n"
	resolv := "nameserver 10.96.0.10\nsearch default.svc.cluster.local\n"
	if _, err := m.CreatePod(PodConfig{ID: podID, Hostname: "web-0", Files: map[string][]byte{
		"/etc/hosts":       []byte(hosts),
		"/etc/resolv.conf": []byte(resolv),
	}}); err != nil {
		t.Fatal(err)
	}
	s := busybox(t, "sh", "-c", "cat /etc/hosts; echo --; cat /etc/hostname; echo --; cat /etc/resolv.conf; echo --; cat /etc/extra; echo $HOSTNAME")
	s.Pod = podID
	s.ReadOnlyRootfs = true
	s.Files = map[string][]byte{"/etc/extra": []byte("mine\n")}
	exit, log := run(t, m, s)
	want := hosts + "--\nweb-0\n--\n" + resolv + "--\nmine\nweb-0\n"
	if exit.Code != 0 || log != want {
		t.Errorf("exit %+v\nlog  %q\nwant %q", exit, log, want)
	}
}

func TestOwnNamespacesWithoutPod(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	netID, _ := os.Readlink("/proc/self/ns/net")
	s := busybox(t, "sh", "-c", nsIDs)
	s.Hostname = "solo"
	s.Files = map[string][]byte{"/etc/hostname": []byte("solo\n")}
	exit, log := run(t, m, s)
	lines := strings.Split(log, "\n")
	if exit.Code != 0 || len(lines) < 4 || lines[0] == netID || lines[3] != "solo" {
		t.Errorf("exit %+v, log %q (host net %s)", exit, log, netID)
	}
}

func TestHostNetwork(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	netID, _ := os.Readlink("/proc/self/ns/net")
	utsID, _ := os.Readlink("/proc/self/ns/uts")
	host, _ := os.Hostname()
	s := busybox(t, "sh", "-c", nsIDs)
	s.HostNetwork = true
	exit, log := run(t, m, s)
	lines := strings.Split(log, "\n")
	if exit.Code != 0 || len(lines) < 4 {
		t.Fatalf("exit %+v, log %q", exit, log)
	}
	if lines[0] != netID || lines[2] != utsID || lines[3] != host {
		t.Errorf("host network container sees %q, want net %s uts %s hostname %s", log, netID, utsID, host)
	}

	// A host-network pod: host net and UTS, an IPC namespace of its own.
	podID := uniqueID(t, "pod")
	if _, err := m.CreatePod(PodConfig{ID: podID, HostNetwork: true}); err != nil {
		t.Fatal(err)
	}
	ipcID, _ := os.Readlink("/proc/self/ns/ipc")
	s = busybox(t, "sh", "-c", nsIDs)
	s.Pod = podID
	exit, log = run(t, m, s)
	lines = strings.Split(log, "\n")
	if exit.Code != 0 || len(lines) < 4 || lines[0] != netID || lines[1] == ipcID || lines[2] != utsID {
		t.Errorf("host-network pod: exit %+v, log %q", exit, log)
	}
	if st, err := m.Inspect(s.ID); err != nil || st.NetNSPath != "" {
		t.Errorf("host-network NetNSPath %q, %v", st.NetNSPath, err)
	}
}

// TestCreatePodLeavesAgentNamespaces: pods are made on throw-away threads;
// the process's own namespaces (its main thread's, /proc/self/ns) and the
// threads that remain stay the host's.
func TestCreatePodLeavesAgentNamespaces(t *testing.T) {
	m := newManager(t)
	before := map[string]string{}
	for _, k := range []string{"net", "ipc", "uts"} {
		before[k], _ = os.Readlink("/proc/self/ns/" + k)
	}
	host, _ := os.Hostname()
	for i := range 10 {
		if _, err := m.CreatePod(PodConfig{ID: uniqueID(t, "pod"+strconv.Itoa(i)), Hostname: "other"}); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range before {
		if now, _ := os.Readlink("/proc/self/ns/" + k); now != v {
			t.Errorf("/proc/self/ns/%s changed from %s to %s", k, v, now)
		}
	}
	if h, _ := os.Hostname(); h != host {
		t.Errorf("hostname changed from %s to %s", host, h)
	}
	// The pinned threads end once their goroutines return.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tasks, _ := os.ReadDir("/proc/self/task")
		var odd []string
		for _, task := range tasks {
			if ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net"); err == nil && ns != before["net"] {
				odd = append(odd, task.Name())
			}
		}
		if len(odd) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads %v still in a pod's network namespace", odd)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
