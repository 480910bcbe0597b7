package hypervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/internal/testguest"
)

const (
	bootMarker = "CLOUDBOX-GUEST-BOOTED"
	readyLine  = "cloudbox-guest: ready"
	waitLimit  = 60 * time.Second
)

func requireQEMU(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(DefaultQEMU); err != nil {
		t.Skipf("%s not installed (Debian: qemu-system-x86)", DefaultQEMU)
	}
}

// testConfig is a TCG VM booting the test guest's kernel and initramfs.
func testConfig(t *testing.T) Config {
	t.Helper()
	requireQEMU(t)
	g := testguest.Build(t)
	return Config{
		Name: strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()), Dir: t.TempDir(),
		Accel: TCG, VCPUs: 1, MemoryMB: 256,
		Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: g.Cmdline,
	}
}

// startVM starts cfg and kills the VM when the test ends.
func startVM(t *testing.T, cfg Config) *VM {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := v.PID()
	t.Cleanup(func() {
		v.Kill()
		v.Close()
		// The handle may have been closed by the test: kill by PID if it still is QEMU.
		if alive(pid) && isOurQEMU(pid, v.Dir()) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			log, _ := os.ReadFile(v.ConsoleLog())
			t.Logf("console.log:\n%s", tail(string(log), 3000))
		}
	})
	return v
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitLog waits until the console log holds at least n copies of s.
func waitLog(t *testing.T, v *VM, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		b, _ := os.ReadFile(v.ConsoleLog())
		if bytes.Count(b, []byte(s)) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("console.log has %d of %q after %s, want %d", bytes.Count(b, []byte(s)), s, waitLimit, n)
		}
		select {
		case <-v.Done():
			if bytes.Count(b, []byte(s)) < n {
				t.Fatalf("QEMU exited (%s) before %q appeared %d times", v.ExitReason(), s, n)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitDone(t *testing.T, v *VM, limit time.Duration) {
	t.Helper()
	select {
	case <-v.Done():
	case <-time.After(limit):
		t.Fatalf("QEMU still running after %s", limit)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func TestStartKernelPauseResumePowerdown(t *testing.T) {
	cfg := testConfig(t)
	cfg.Forwards = []PortForward{{HostPort: freePort(t), GuestPort: 80}}
	start := time.Now()
	v := startVM(t, cfg)
	t.Logf("Start returned in %s", time.Since(start).Round(time.Millisecond))
	ctx := ctxT(t)
	if st, err := v.State(ctx); err != nil || st != StateRunning {
		t.Fatalf("State = %q, %v; want running", st, err)
	}
	waitLog(t, v, bootMarker, 1)
	t.Logf("boot marker after %s", time.Since(start).Round(time.Millisecond))
	if err := v.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := v.State(ctx); err != nil || st != StatePaused {
		t.Fatalf("State after Pause = %q, %v", st, err)
	}
	if err := v.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := v.State(ctx); err != nil || st != StateRunning {
		t.Fatalf("State after Resume = %q, %v", st, err)
	}
	// acpid starts at the end of the guest's boot.
	waitLog(t, v, readyLine, 1)
	if err := v.Powerdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, v, waitLimit)
	waitLog(t, v, "cloudbox-guest: powering off", 1)
	if r := v.ExitReason(); r != "guest-shutdown" {
		t.Errorf("ExitReason = %q, want guest-shutdown", r)
	}
	if st, err := v.State(ctx); err != nil || st != StateExited {
		t.Errorf("State after exit = %q, %v", st, err)
	}
	for _, f := range []string{qmpSocket, pidFile} {
		if _, err := os.Stat(filepath.Join(v.Dir(), f)); err == nil {
			t.Errorf("%s left behind", f)
		}
	}
	if err := v.Stop(ctx, time.Second); err != nil {
		t.Errorf("Stop after exit: %v", err)
	}
}

func TestStartDisk(t *testing.T) {
	cfg := testConfig(t)
	overlay := filepath.Join(t.TempDir(), "root.qcow2")
	qemuImg(t, "create", "-f", "qcow2", "-F", "qcow2", "-b", testguest.Build(t).Disk, overlay)
	cfg.Kernel, cfg.Initrd, cfg.Cmdline = "", "", ""
	cfg.Disk = overlay
	v := startVM(t, cfg)
	waitLog(t, v, bootMarker, 1)
	waitLog(t, v, "cloudbox-guest: disk present vda", 1)
	ctx := ctxT(t)
	start := time.Now()
	if err := v.Stop(ctx, waitLimit); err != nil {
		t.Fatal(err)
	}
	if r := v.ExitReason(); r != "guest-shutdown" {
		t.Errorf("ExitReason = %q after %s, want guest-shutdown", r, time.Since(start))
	}
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// A VM stopped while its guest still boots (the first press finds no ACPI button
// driver) powers off gracefully all the same: Stop presses again.
func TestStopDuringBootPressesAgain(t *testing.T) {
	v := startVM(t, testConfig(t))
	ctx := ctxT(t)
	if err := v.Stop(ctx, waitLimit); err != nil {
		t.Fatal(err)
	}
	if r := v.ExitReason(); r != "guest-shutdown" {
		t.Errorf("ExitReason = %q, want guest-shutdown (a press during boot is lost; a later one is not)", r)
	}
	if b, _ := os.ReadFile(v.ConsoleLog()); !strings.Contains(string(b), "cloudbox-guest: powering off") {
		t.Errorf("the guest did not power off through acpid; console:\n%s", b)
	}
}

// A guest that ignores the power button is stopped by QMP quit once grace runs out.
func TestStopIgnoringACPI(t *testing.T) {
	v := startVM(t, testConfig(t))
	waitLog(t, v, readyLine, 1)
	c := dialConsole(t, v)
	c.run(t, `killall acpid; echo acpid-""gone`, "acpid-gone")
	ctx := ctxT(t)
	grace := 2 * time.Second
	start := time.Now()
	if err := v.Stop(ctx, grace); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("Stop took %s", took.Round(time.Millisecond))
	if took < grace || took > grace+10*time.Second {
		t.Errorf("Stop took %s with grace %s", took, grace)
	}
	if r := v.ExitReason(); r != "host-qmp-quit" {
		t.Errorf("ExitReason = %q, want host-qmp-quit", r)
	}
	if err := v.Stop(ctx, grace); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestResetAndReboot(t *testing.T) {
	v := startVM(t, testConfig(t))
	ctx := ctxT(t)
	waitLog(t, v, readyLine, 1)
	if err := v.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	waitLog(t, v, bootMarker, 2)
	waitLog(t, v, readyLine, 2)
	// busybox init reboots on ctrl-alt-delete (inittab ::ctrlaltdel:).
	if err := v.Reboot(ctx, waitLimit); err != nil {
		t.Fatal(err)
	}
	waitLog(t, v, bootMarker, 3)
	if st, err := v.State(ctx); err != nil || st != StateRunning {
		t.Errorf("State = %q, %v", st, err)
	}

	// A paused guest cannot act on ctrl-alt-delete: Reboot falls back to a hard reset.
	if err := v.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	reset, unsub := v.subscribe(eventNamed("RESET"))
	defer unsub()
	if err := v.Reboot(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-reset:
		if e.Data["reason"] != "host-qmp-system-reset" {
			t.Errorf("RESET event %v, want reason host-qmp-system-reset", e.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no RESET event after Reboot's fallback")
	}
	if err := v.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitLog(t, v, bootMarker, 4)
}

// The agent restarts: it forgets the VM (Close) and finds it again from its directory.
func TestAttachAfterClose(t *testing.T) {
	cfg := testConfig(t)
	v := startVM(t, cfg)
	pid := v.PID()
	ctx := ctxT(t)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.State(ctx); err == nil {
		t.Error("State works after Close")
	}
	if _, err := Start(ctx, cfg); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Start in the same dir = %v, want ErrAlreadyRunning", err)
	}
	v2, err := Attach(ctx, cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if v2.PID() != pid {
		t.Errorf("Attach found pid %d, want %d", v2.PID(), pid)
	}
	if st, err := v2.State(ctx); err != nil || st != StateRunning {
		t.Fatalf("State = %q, %v", st, err)
	}
	waitLog(t, v2, bootMarker, 1)
	// go-qemu's SocketMonitor loses the connection on a reply over 64 KiB; ours must not.
	schema, err := v2.run(ctx, "query-qmp-schema", nil)
	if err != nil || len(schema) < 64<<10 {
		t.Errorf("query-qmp-schema: %d bytes, %v", len(schema), err)
	}
	if err := v2.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := v2.State(ctx); st != StatePaused {
		t.Errorf("State after Pause = %q", st)
	}

	// kill -9 behind the handle's back: Done still closes, and Attach finds nothing.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDone(t, v2, 10*time.Second)
	if r := v2.ExitReason(); r != ExitUnknown {
		t.Errorf("ExitReason = %q, want %q", r, ExitUnknown)
	}
	v2.Close()
	// Put back what QEMU leaves after kill -9 when no handle watched it.
	if err := os.WriteFile(filepath.Join(cfg.Dir, pidFile), fmt.Appendf(nil, "%d\n", pid), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, qmpSocket), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(ctx, cfg.Dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Attach after kill -9 = %v, want ErrNotRunning", err)
	}
	for _, f := range []string{qmpSocket, consoleSocket, pidFile} {
		if _, err := os.Stat(filepath.Join(cfg.Dir, f)); err == nil {
			t.Errorf("stale %s not removed", f)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, consoleLog)); err != nil {
		t.Errorf("console.log removed: %v", err)
	}
}

// Attach must not take over a live process that is not this directory's QEMU.
func TestAttachRecycledPID(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	os.WriteFile(filepath.Join(dir, pidFile), fmt.Appendf(nil, "%d\n", cmd.Process.Pid), 0o644)
	if _, err := Attach(context.Background(), dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Attach = %v, want ErrNotRunning", err)
	}
	if _, err := os.Stat(filepath.Join(dir, pidFile)); err == nil {
		t.Error("stale pidfile kept")
	}
}

func TestStartFailureCarriesStderr(t *testing.T) {
	cfg := testConfig(t)
	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, bytes.Repeat([]byte{0xff}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Kernel, cfg.Initrd, cfg.Cmdline = junk, "", ""
	_, err := Start(context.Background(), cfg)
	if err == nil {
		t.Fatal("Start with a junk kernel succeeded")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "kernel") {
		t.Errorf("error lacks QEMU's message: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, pidFile)); err == nil {
		t.Error("pidfile left behind")
	}
}

func TestStartInvalid(t *testing.T) {
	_, err := Start(context.Background(), Config{Name: "x", Dir: t.TempDir()})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Start = %v, want ErrInvalidConfig", err)
	}
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A FAT seed labelled CIDATA reaches the guest's NoCloud reader.
func TestSeedFAT(t *testing.T) {
	for _, tool := range []string{"mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian: dosfstools, mtools)", tool)
		}
	}
	cfg := testConfig(t)
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.img")
	md := filepath.Join(dir, "meta-data")
	ud := filepath.Join(dir, "user-data")
	os.WriteFile(md, []byte("instance-id: i-1\nlocal-hostname: seeded-vm\n"), 0o644)
	os.WriteFile(ud, []byte("#cloud-config\n"), 0o644)
	for _, c := range [][]string{
		{"mkfs.vfat", "-C", "-n", "CIDATA", seed, "1024"},
		{"mcopy", "-i", seed, md, ud, "::/"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", c[0], err, out)
		}
	}
	cfg.Seed = seed
	v := startVM(t, cfg)
	waitLog(t, v, "cloudbox-guest: hostname=seeded-vm", 1)
}
