package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/testguest"
)

// vmWait bounds the waits on a VM: a TCG boot on two busy cores takes 3-15 s.
const vmWait = 3 * time.Minute

// waitConsole follows the VM's serial console log until every line in want has
// appeared (each as many times as it is listed), and returns what was read.
func waitConsole(t *testing.T, cl *client.Client, name string, want ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), vmWait)
	defer cancel()
	for {
		rc, err := cl.Logs(ctx, "default", api.InstancePodName(name), client.LogOptions{Container: "vm", Follow: true})
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("console of %s: %v", name, err)
			}
			continue // the launcher pod is not running yet
		}
		var seen strings.Builder
		need := map[string]int{}
		for _, w := range want {
			need[w]++
		}
		sc := bufio.NewScanner(rc)
		for sc.Scan() {
			line := sc.Text()
			seen.WriteString(line + "\n")
			for w := range need {
				if strings.Contains(line, w) {
					if need[w]--; need[w] == 0 {
						delete(need, w)
					}
				}
			}
			if len(need) == 0 {
				rc.Close()
				return seen.String()
			}
		}
		rc.Close()
		if ctx.Err() != nil {
			t.Fatalf("console of %s: still waiting for %v; it showed:\n%s", name, need, seen.String())
		}
	}
}

// waitInstance waits until the instance satisfies cond.
func waitInstance(t *testing.T, cl *client.Client, name, what string, cond func(*api.Instance) bool) *api.Instance {
	t.Helper()
	k, _ := api.LookupKind("instances")
	ctx, cancel := context.WithTimeout(context.Background(), vmWait)
	defer cancel()
	events, err := cl.Watch(ctx, k, "default", client.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var last *api.Instance
	for {
		o, err := cl.Get(ctx, k, "default", name)
		if err == nil {
			last = o.(*api.Instance)
			if cond(last) {
				return last
			}
		}
		select {
		case _, ok := <-events:
			if !ok {
				t.Fatalf("waiting for %s %s: watch ended; last: %+v", name, what, last)
			}
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s %s; last status: %+v", name, what, last)
		}
	}
}

func stateIs(state string) func(*api.Instance) bool {
	return func(i *api.Instance) bool { return i.Status.State == state }
}

// TestVMLifecycle runs a real VM (QEMU under TCG) through what a user does with one:
// create from a kernel image with a key pair and user-data, see it boot and read its
// seed, reach it from a pod, hot-plug a volume, survive a kill -9 of the server,
// pause, reboot, stop gracefully, delete; and a flavor too big for any node.
func TestVMLifecycle(t *testing.T) {
	guest := testguest.Build(t)
	cidr := freeClusterCIDR(t, "10.248.0.0/16")
	prefix := strings.TrimSuffix(cidr, "0.0/16")
	c, cl, restart := bridgeClusterWith(t, cidr, []string{"--vm-accel", "tcg"}, "1.36")

	c.must("image", "import", "--kernel", guest.Kernel, "--initrd", guest.Initrd, "--cmdline", guest.Cmdline, "--name", "guest")
	c.must("flavor", "create", "e2e.small", "--vcpus", "1", "--ram", "256", "--disk", "0")
	c.must("keypair", "create", "k1", "--private-key", filepath.Join(t.TempDir(), "k1"))
	userData := writeFile(t, "user-data", "#cloud-config\n# e2e-user-data-marker\n")
	out := c.must("vm", "create", "g1", "--image", "guest", "--flavor", "e2e.small", "--key-pair", "k1", "--user-data", userData, "--wait", "--timeout", "3m")
	if !strings.Contains(out, "ACTIVE") {
		t.Fatalf("vm create --wait:\n%s", out)
	}
	inst := waitInstance(t, cl, "g1", "ACTIVE with an address", func(i *api.Instance) bool {
		return i.Status.State == api.InstanceActive && strings.HasPrefix(i.Status.Address, prefix) && i.Status.PID > 0
	})
	if inst.Status.Accel != "tcg" || inst.Status.NodeName == "" || inst.Status.MAC == "" {
		t.Errorf("status: %+v", inst.Status)
	}
	// The guest boots, and finds its name, key, user-data and address in the seed.
	waitConsole(t, cl, "g1", "CLOUDBOX-GUEST-BOOTED", "cloudbox-guest: hostname=g1", "e2e-user-data-marker",
		"cloudbox-guest: public-keys=1", "cloudbox-guest: address="+inst.Status.Address+"/", "cloudbox-guest: ready")
	if list := c.must("vm", "list", "-o", "wide"); !strings.Contains(list, inst.Status.Address) || !strings.Contains(list, "ACTIVE") {
		t.Errorf("vm list:\n%s", list)
	}

	// The interactive console reaches the guest's shell, and Ctrl-] detaches.
	consoleSession(t, c, "g1")

	// A disk image (qcow2, found from its content) boots through an overlay of its own.
	c.must("image", "import", guest.Disk, "--name", "guestdisk")
	if ls := c.must("image", "ls"); !strings.Contains(ls, "guestdisk") || !strings.Contains(ls, "qcow2") {
		t.Errorf("image ls:\n%s", ls)
	}
	c.must("vm", "create", "d1", "--image", "guestdisk", "--flavor", "e2e.small", "--wait", "--timeout", "3m")
	waitConsole(t, cl, "d1", "CLOUDBOX-GUEST-BOOTED", "cloudbox-guest: hostname=d1", "cloudbox-guest: disk present vda", "cloudbox-guest: ready")
	c.must("vm", "delete", "d1", "--wait")

	// A pod reaches the VM's address on the pod network.
	c.must("apply", "-f", writeFile(t, "client.yaml", `apiVersion: v1
kind: Pod
metadata: {name: vmclient}
spec:
  containers:
  - {name: c, image: busybox:1.36, command: [sleep, "3600"]}
`))
	waitPodCond(t, cl, "vmclient", "Running", running)
	eventually(t, "the pod reaching the VM", func() error {
		got, err := podGet(c, "default", "vmclient", "http://"+inst.Status.Address+"/")
		if err == nil && !strings.Contains(got, "hello from g1") {
			err = fmt.Errorf("answer %q", got)
		}
		return err
	})
	// A Service selects the VM by its labels (the launcher pod's): its endpoint is
	// the VM's address, and the pod reaches the VM through the Service's name.
	c.must("apply", "-f", writeFile(t, "vmweb.yaml", `apiVersion: v1
kind: Service
metadata: {name: vmweb}
spec:
  selector: {compute.cloudbox.io/instance: g1}
  ports: [{port: 8080, targetPort: 80}]
`))
	eventually(t, "the Service's endpoint being the VM", func() error {
		out, errOut, err := c.run("", "get", "endpoints", "vmweb")
		if err == nil && !strings.Contains(out, inst.Status.Address+":80") {
			err = fmt.Errorf("endpoints:\n%s", out)
		}
		if err != nil {
			return fmt.Errorf("%v %s", err, errOut)
		}
		return nil
	})
	eventually(t, "the pod reaching the VM through the Service", func() error {
		got, err := podGet(c, "default", "vmclient", "http://vmweb:8080/")
		if err == nil && !strings.Contains(got, "hello from g1") {
			err = fmt.Errorf("answer %q", got)
		}
		return err
	})

	// A volume is hot-plugged and the guest sees a new disk; then it is unplugged.
	c.must("volume", "create", "data", "--size", "1")
	c.must("volume", "attach", "data", "g1")
	waitConsole(t, cl, "g1", "cloudbox-guest: disk added vd")
	waitInstance(t, cl, "g1", "with the volume plugged", func(i *api.Instance) bool { return len(i.Status.Volumes) == 1 })
	if show := c.must("volume", "show", "data"); !strings.Contains(show, "in-use") || !strings.Contains(show, "g1") {
		t.Errorf("volume show:\n%s", show)
	}
	c.must("volume", "detach", "data", "g1")
	waitConsole(t, cl, "g1", "cloudbox-guest: disk removed vd")
	waitInstance(t, cl, "g1", "with no volume", func(i *api.Instance) bool { return len(i.Status.Volumes) == 0 })

	// kill -9 of the server: the same QEMU is re-attached and the VM stays ACTIVE.
	pid := inst.Status.PID
	cl = restart()
	inst = waitInstance(t, cl, "g1", "ACTIVE after the restart", stateIs(api.InstanceActive))
	if inst.Status.PID != pid {
		t.Errorf("QEMU pid %d after the restart, was %d", inst.Status.PID, pid)
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.Contains(string(cmdline), "qemu") {
		t.Fatalf("QEMU (pid %d) did not survive the restart: %v %q", pid, err, cmdline)
	}
	// The re-attached VM still takes orders: pause, resume, hard reboot.
	c.must("vm", "pause", "g1")
	waitInstance(t, cl, "g1", "PAUSED", stateIs(api.InstancePaused))
	c.must("vm", "resume", "g1")
	waitInstance(t, cl, "g1", "ACTIVE after resume", stateIs(api.InstanceActive))
	c.must("vm", "reboot", "--hard", "g1")
	waitConsole(t, cl, "g1", "CLOUDBOX-GUEST-BOOTED", "CLOUDBOX-GUEST-BOOTED")
	waitConsole(t, cl, "g1", "cloudbox-guest: ready", "cloudbox-guest: ready")
	inst = waitInstance(t, cl, "g1", "ACTIVE after the reboot", stateIs(api.InstanceActive))
	if inst.Status.PID != pid {
		t.Errorf("a reboot replaced QEMU: pid %d, was %d", inst.Status.PID, pid)
	}

	// A graceful stop: the guest powers off through ACPI.
	c.must("vm", "stop", "g1")
	waitInstance(t, cl, "g1", "SHUTOFF", stateIs(api.InstanceShutoff))
	logs, _ := filepath.Glob(filepath.Join(c.dir, "agent", "vm", "instances", "*", "console.log"))
	if len(logs) != 1 {
		t.Fatalf("console logs on the node: %v", logs)
	}
	if b, err := os.ReadFile(logs[0]); err != nil || !strings.Contains(string(b), "cloudbox-guest: powering off") {
		t.Errorf("the guest did not power off through ACPI (%v); its console ends:\n%s", err, tail(string(b), 20))
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil && !isZombie(fmt.Sprint(pid)) {
		t.Errorf("QEMU (pid %d) still runs after the stop", pid)
	}

	// Started again, it boots from the disk it kept, with the address it had.
	address := inst.Status.Address
	c.must("vm", "start", "g1")
	inst = waitInstance(t, cl, "g1", "ACTIVE after the start", func(i *api.Instance) bool {
		return i.Status.State == api.InstanceActive && i.Status.PID > 0 && i.Status.PID != pid
	})
	if inst.Status.Address != address {
		t.Errorf("address after stop and start: %s, was %s", inst.Status.Address, address)
	}
	// The console log holds every boot of the instance: this is its third (the first,
	// the hard reboot, this start).
	addressLine := "cloudbox-guest: address=" + address + "/"
	waitConsole(t, cl, "g1", testguest.Marker, testguest.Marker, testguest.Marker,
		addressLine, addressLine, addressLine, testguest.Ready, testguest.Ready, testguest.Ready)

	// A flavor no node can hold leaves the instance in ERROR with the reason. This
	// instance comes from a manifest: `cloudbox apply -f` takes compute kinds too.
	c.must("flavor", "create", "e2e.huge", "--vcpus", "1", "--ram", "1048576")
	c.must("apply", "-f", writeFile(t, "big.yaml", `apiVersion: compute/v1
kind: Instance
metadata: {name: big, labels: {tier: db}}
spec: {flavor: e2e.huge, image: guest}
`))
	big := waitInstance(t, cl, "big", "ERROR", stateIs(api.InstanceError))
	if big.Status.Reason != "NoValidHost" || !strings.Contains(big.Status.Message, "insufficient memory") {
		t.Errorf("status of the instance too big for the node: %+v", big.Status)
	}

	// Deleting an instance removes its disk and seed from the node.
	dirs, _ := filepath.Glob(filepath.Join(c.dir, "agent", "vm", "instances", "*"))
	if len(dirs) == 0 {
		t.Fatal("no instance directory on the node")
	}
	c.must("vm", "delete", "g1", "--wait")
	c.must("vm", "delete", "big", "--wait")
	eventually(t, "the instance's files removed", func() error {
		left, _ := filepath.Glob(filepath.Join(c.dir, "agent", "vm", "instances", "*"))
		if len(left) > 0 {
			return fmt.Errorf("left: %v; the server's VM log:\n%s", left, grepLines(filepath.Join(c.dir, "server.log"), "vm"))
		}
		return nil
	})
	var vols struct{ Items []json.RawMessage }
	if err := json.Unmarshal([]byte(c.must("get", "volumes", "-o", "json")), &vols); err != nil || len(vols.Items) != 1 {
		t.Errorf("the volume should outlive the instance: %v %d", err, len(vols.Items))
	}
}

// consoleSession runs `cloudbox vm console NAME` with piped input: it types a
// command into the guest's shell, waits for the answer (which the typed line itself
// does not contain), then sends Ctrl-] and expects the CLI to detach.
func consoleSession(t *testing.T, c *cluster, name string) {
	t.Helper()
	in, typing := io.Pipe()
	out := lineWriter{ch: make(chan string, 256)}
	app := App()
	app.Writer, app.ErrWriter, app.Reader = out, out, in
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ReorderArgs(app, []string{"cloudbox", "--config", c.config, "vm", "console", name}))
	}()
	go func() { _, _ = typing.Write([]byte("\necho console-$((6*7))\n")) }()
	var seen strings.Builder
	deadline := time.After(vmWait)
	for !strings.Contains(seen.String(), "console-42") {
		select {
		case chunk := <-out.ch:
			seen.WriteString(chunk)
		case err := <-done:
			t.Fatalf("vm console ended before the guest answered: %v\n%s", err, seen.String())
		case <-deadline:
			t.Fatalf("the guest's shell did not answer on the console:\n%s", seen.String())
		}
	}
	go func() { _, _ = typing.Write([]byte{0x1d}) }()
	for {
		select {
		case chunk := <-out.ch:
			seen.WriteString(chunk)
		case err := <-done:
			if err != nil || !strings.Contains(seen.String(), "Detached.") {
				t.Fatalf("vm console after Ctrl-]: %v\n%s", err, seen.String())
			}
			typing.Close()
			return
		case <-time.After(30 * time.Second):
			t.Fatalf("vm console did not detach on Ctrl-]:\n%s", seen.String())
		}
	}
}

// grepLines is the lines of a file that contain word, for failure messages.
func grepLines(path, word string) string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return tail(strings.Join(out, "\n"), 60)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
