package testguest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildBoots builds the guest and boots its kernel and initrd under TCG (KVM may
// hang on nested hosts) until the console shows the ready line without a seed.
func TestBuildBoots(t *testing.T) {
	g := Build(t)
	for _, p := range []string{g.Kernel, g.Initrd, g.Disk} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if !strings.Contains(g.Cmdline, "console=ttyS0") {
		t.Errorf("cmdline %q", g.Cmdline)
	}
	again, err := BuildDir(context.Background())
	if err != nil || again.Dir != g.Dir {
		t.Fatalf("second build: %v, %v; want the cached %s", again, err, g.Dir)
	}

	log := filepath.Join(t.TempDir(), "console.log")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-nodefaults",
		"-display", "none", "-no-reboot", "-serial", "file:"+log,
		"-kernel", g.Kernel, "-initrd", g.Initrd, "-append", g.Cmdline)
	if err := cmd.Start(); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), Ready) {
			for _, want := range []string{Marker, "cloudbox-guest: no seed"} {
				if !strings.Contains(string(b), want) {
					t.Errorf("console lacks %q:\n%s", want, b)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 60 s; console:\n%s", Ready, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
