package hypervisor

import (
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestHotplugDisk(t *testing.T) {
	v := startVM(t, testConfig(t))
	ctx := ctxT(t)
	blank := filepath.Join(t.TempDir(), "vol,1.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", blank, "16M")
	waitLog(t, v, readyLine, 1) // the guest's disk watcher runs from here

	if err := v.AttachDisk(ctx, "vol1", blank, "qcow2"); err != nil {
		t.Fatal(err)
	}
	added := waitLogMatch(t, v, regexp.MustCompile(`cloudbox-guest: disk added (vd[a-z]+)`))
	if ids, err := v.Disks(ctx); err != nil || !slices.Equal(ids, []string{"vol1"}) {
		t.Errorf("Disks = %q, %v; want [vol1]", ids, err)
	}
	if err := v.AttachDisk(ctx, "vol1", blank, "qcow2"); err == nil {
		t.Error("attaching the same id twice succeeded")
	}
	// The failed attach must not have left a node behind.
	if ids, _ := v.Disks(ctx); !slices.Equal(ids, []string{"vol1"}) {
		t.Errorf("Disks after failed attach = %q", ids)
	}

	start := time.Now()
	if err := v.DetachDisk(ctx, "vol1"); err != nil {
		t.Fatal(err)
	}
	t.Logf("DetachDisk took %s", time.Since(start).Round(time.Millisecond))
	waitLog(t, v, "cloudbox-guest: disk removed "+added, 1)
	if ids, err := v.Disks(ctx); err != nil || len(ids) != 0 {
		t.Errorf("Disks after detach = %q, %v", ids, err)
	}
	if err := v.DetachDisk(ctx, "vol1"); !errors.Is(err, ErrNoDisk) {
		t.Errorf("second DetachDisk = %v, want ErrNoDisk", err)
	}
	// The id is free again.
	if err := v.AttachDisk(ctx, "vol1", blank, "qcow2"); err != nil {
		t.Errorf("re-attach: %v", err)
	}
	if err := v.AttachDisk(ctx, "bad,id", blank, "qcow2"); err == nil {
		t.Error("AttachDisk accepted id bad,id")
	}
	waitLog(t, v, "cloudbox-guest: disk added", 2)

	// An agent restarted learns from QEMU what is plugged, and can unplug it.
	v.Close()
	v2, err := Attach(ctx, v.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if ids, err := v2.Disks(ctx); err != nil || !slices.Equal(ids, []string{"vol1"}) {
		t.Errorf("Disks after re-attach = %q, %v; want [vol1]", ids, err)
	}
	if err := v2.DetachDisk(ctx, "vol1"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, v2, "cloudbox-guest: disk removed", 2)
}

// waitLogMatch waits for re in the console log and returns its first group.
func waitLogMatch(t *testing.T, v *VM, re *regexp.Regexp) string {
	t.Helper()
	var m []string
	deadline := time.Now().Add(waitLimit)
	for m == nil {
		if time.Now().After(deadline) {
			t.Fatalf("console.log never matched %s", re)
		}
		time.Sleep(100 * time.Millisecond)
		b, _ := readFile(v.ConsoleLog())
		m = re.FindStringSubmatch(b)
	}
	return m[1]
}
