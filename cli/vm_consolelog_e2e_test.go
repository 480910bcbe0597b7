package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/internal/testenv"
	"github.com/cloudbox/cloudbox/internal/testguest"
)

// TestVMConsoleLogAfterStop: a stopped VM's console log can still be read, from the
// node that ran it (its launcher pod is gone), until the instance is deleted, as in
// Nova.
func TestVMConsoleLogAfterStop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run VMs")
	}
	guest := testguest.Build(t)
	dir := t.TempDir()
	cgroup := testenv.CgroupParent(t)
	sp, c := startCleanedUp(t, dir, cgroup, "--vm-accel", "tcg")
	cl := waitReady(t, sp, dir)

	c.must("image", "import", "--kernel", guest.Kernel, "--initrd", guest.Initrd, "--cmdline", guest.Cmdline, "--name", "guest")
	c.must("flavor", "create", "e2e.small", "--vcpus", "1", "--ram", "256", "--disk", "0")
	c.must("vm", "create", "g1", "--image", "guest", "--flavor", "e2e.small", "--wait", "--timeout", "3m")
	waitConsole(t, cl, "g1", testguest.Ready)

	c.must("vm", "stop", "g1")
	waitInstance(t, cl, "g1", "SHUTOFF", stateIs(api.InstanceShutoff))
	c.must("wait", "--for=delete", "pod/"+api.InstancePodName("g1"), "--timeout", "1m")
	out := c.must("vm", "console-log", "g1")
	if !strings.Contains(out, testguest.Marker) || !strings.Contains(out, testguest.Ready) || !strings.Contains(out, "cloudbox-guest: powering off") {
		t.Fatalf("console-log of the stopped VM lacks its boot and its power-off:\n%s", tail(out, 20))
	}
	if last := c.must("vm", "console-log", "g1", "--tail", "3"); last == "" || len(last) >= len(out) || strings.Count(last, "\n") > 3 || !strings.HasSuffix(out, last) {
		t.Errorf("console-log --tail 3 of the stopped VM: %q; the log ends:\n%s", last, tail(out, 3))
	}

	// Deleted, the instance and its log are gone.
	c.must("vm", "delete", "g1", "--wait")
	if _, errOut, err := c.run("", "vm", "console-log", "g1"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("console-log of a deleted instance: %v %s", err, errOut)
	}
}
