package hypervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testGuest is the small Linux guest the VM tests boot, built by
// testdata/vm/build-guest.sh. It stands in for internal/testguest, which was not there
// yet when these tests were written; the fields match testguest.Guest, so switching is
// buildGuest's body becoming `return testguest.Build(t)` and this file going away.
type testGuest struct{ Dir, Kernel, Initrd, Disk, Cmdline string }

var (
	guestOnce sync.Once
	guest     *testGuest
	guestErr  error
)

func buildGuest(t *testing.T) *testGuest {
	t.Helper()
	guestOnce.Do(func() {
		out, err := exec.Command("bash", "../testdata/vm/build-guest.sh").Output()
		if err != nil {
			guestErr = err
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		dir := lines[len(lines)-1]
		cl, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			guestErr = err
			return
		}
		guest = &testGuest{Dir: dir, Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
			Disk: filepath.Join(dir, "disk.qcow2"), Cmdline: strings.TrimSpace(string(cl))}
	})
	if guestErr != nil {
		t.Fatalf("build test guest: %v", guestErr)
	}
	return guest
}
