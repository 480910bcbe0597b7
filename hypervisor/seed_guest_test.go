package hypervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/internal/testguest"
)

// bootGuest runs QEMU under TCG (KVM hangs on nested hosts here) with the serial console
// in a file and a QMP socket; QEMU is killed when the test ends.
func bootGuest(t *testing.T, args ...string) (consoleLog, qmp string, done <-chan error) {
	t.Helper()
	dir := t.TempDir()
	consoleLog, qmp = filepath.Join(dir, "console.log"), filepath.Join(dir, "qmp.sock")
	base := []string{"-accel", "tcg", "-m", "256", "-nodefaults", "-display", "none", "-no-reboot",
		"-serial", "file:" + consoleLog, "-qmp", "unix:" + qmp + ",server=on,wait=off"}
	cmd := exec.Command("qemu-system-x86_64", append(base, args...)...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	ch := make(chan error, 1)
	exited := make(chan struct{})
	go func() { ch <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("qemu output: %s", out)
		}
	})
	return consoleLog, qmp, ch
}

// waitConsole polls the console log until it contains every line in want.
func waitConsole(t *testing.T, consoleLog string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(consoleLog)
		missing := ""
		for _, w := range want {
			if !strings.Contains(string(b), w+"\n") && !strings.Contains(string(b), w+"\r\n") {
				missing = w
				break
			}
		}
		if missing == "" {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("console lacks %q after 60 s:\n%s", missing, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// consoleHas waits up to d for line to appear in the console log.
func consoleHas(consoleLog, line string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, _ := os.ReadFile(consoleLog); strings.Contains(string(b), line) {
			return true
		}
	}
	return false
}

// qmpCommand sends one command over a fresh QMP connection; raw JSON keeps this test
// independent of the VM code.
func qmpCommand(t *testing.T, sock, command string) {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		t.Fatal(err)
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		if _, err := c.Write([]byte(`{"execute":"` + cmd + `"}` + "\n")); err != nil {
			t.Fatal(err)
		}
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				t.Fatalf("qmp %s: %v", cmd, err)
			}
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["event"] == nil {
				if m["error"] != nil {
					t.Fatalf("qmp %s: %s", cmd, line)
				}
				break
			}
		}
	}
}

// TestSeedInGuest proves that a real guest reads WriteSeed's ISO (as an IDE cdrom, the
// way cloud images look for it), that the guest powers off on an ACPI power button, and
// that an overlay made by CreateOverlay over the guest's disk boots through SeaBIOS.
func TestSeedInGuest(t *testing.T) {
	g := testguest.Build(t)
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.iso")
	const mac = "52:54:00:12:34:56"
	err := WriteSeed(seed, Seed{
		InstanceID: "i-seedtest",
		Hostname:   "seed-test-1",
		PublicKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA a@b", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB c@d"},
		UserData:   []byte("#cloud-config\nwrite_files: []\n# seed-user-data-line\n"),
		Network:    &SeedNetwork{MAC: mac, Address: "10.77.0.5/24", Gateway: "10.77.0.1", Nameservers: []string{"10.77.0.2"}},
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("kernel", func(t *testing.T) {
		console, qmp, done := bootGuest(t, "-kernel", g.Kernel, "-initrd", g.Initrd, "-append", g.Cmdline,
			"-drive", "file="+seed+",if=ide,media=cdrom,format=raw,readonly=on",
			"-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0,mac="+mac)
		out := waitConsole(t, console, testguest.Marker, "cloudbox-guest: hostname=seed-test-1",
			"cloudbox-guest: public-keys=2", "cloudbox-guest: address=10.77.0.5/24", testguest.Ready)
		begin := strings.Index(out, "cloudbox-guest: user-data begin")
		end := strings.Index(out, "cloudbox-guest: user-data end")
		if begin < 0 || end < begin || !strings.Contains(out[begin:end], "# seed-user-data-line") {
			t.Errorf("user-data not between its markers:\n%s", out)
		}

		// The button is pressed again every few seconds, as a user would: on two busy
		// cores acpid (which daemonizes) may not have opened the input device yet.
		pressed := time.Now()
		for {
			qmpCommand(t, qmp, "system_powerdown")
			if consoleHas(console, "cloudbox-guest: powering off", 5*time.Second) {
				break
			}
			if time.Since(pressed) > 60*time.Second {
				t.Fatalf("no power-off 60 s after the first ACPI button press")
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("qemu after powerdown: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("guest did not power off within 60 s of system_powerdown")
		}
	})

	t.Run("disk", func(t *testing.T) {
		overlay := filepath.Join(t.TempDir(), "root.qcow2")
		if err := CreateOverlay(context.Background(), g.Disk, "", overlay, 256<<20); err != nil {
			t.Fatal(err)
		}
		console, _, _ := bootGuest(t, "-drive", "file="+overlay+",if=virtio,format=qcow2",
			"-drive", "file="+seed+",if=ide,media=cdrom,format=raw,readonly=on")
		waitConsole(t, console, testguest.Marker, "cloudbox-guest: hostname=seed-test-1",
			testguest.Ready, "cloudbox-guest: disk present vda")
	})
}
