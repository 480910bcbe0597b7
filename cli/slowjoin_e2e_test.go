package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/internal/testenv"
)

// TestWaitHoldsThroughASlowNodeRegistration plays the machine of issue 12: the KVM
// probe guest prints nothing, so the probe takes its full 3 s timeout and the node
// registers seconds after the API answers. `cloudbox wait`, as scripts/up.sh runs
// it right after starting the server, returns only once the node is Ready, and what
// needs a node (an image import) then works.
func TestWaitHoldsThroughASlowNodeRegistration(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		t.Skipf("the KVM probe runs only where /dev/kvm opens: %v", err)
	} else {
		f.Close()
	}
	tools := t.TempDir()
	// A QEMU that never boots the probe guest, and a file that passes for a kernel.
	qemu := filepath.Join(tools, "qemu-silent")
	if err := os.WriteFile(qemu, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	kernel := make([]byte, 0x400)
	copy(kernel[0x202:], "HdrS")
	kernelPath := filepath.Join(tools, "vmlinuz")
	if err := os.WriteFile(kernelPath, kernel, 0o644); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cgroup := testenv.CgroupParent(t)
	start := time.Now()
	_, c := startCleanedUp(t, dir, cgroup, "--vm-accel", "auto", "--qemu", qemu, "--vm-probe-kernel", kernelPath)
	out, errOut, err := c.run("", "wait", "--for=condition=Ready", "node", "--all", "--timeout", "60s")
	took := time.Since(start)
	if err != nil || out != "node/e2e-node condition met\n" {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		t.Fatalf("wait for the node: %v, %q %q; server log:\n%s", err, out, errOut, log)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
	if !strings.Contains(string(log), "KVM probe guest printed nothing in 3s") {
		t.Fatalf("the probe did not take its full timeout; server log:\n%s", log)
	}
	if took < 3*time.Second {
		t.Errorf("wait returned %s after the start, before the 3 s probe could have ended", took)
	}
	if out := c.must("get", "nodes"); !strings.Contains(out, "e2e-node") || !strings.Contains(out, "Ready") {
		t.Errorf("get nodes after the wait:\n%s", out)
	}
	// What refused to run before the node registered (issue 12) now finds it.
	if out, errOut, err := c.run("", "image", "ls"); err != nil {
		t.Errorf("image ls after the wait: %v %s %s", err, out, errOut)
	}
}
