package hypervisor

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func needQEMUImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(QEMUImg); err != nil {
		t.Skip("needs qemu-img (Debian qemu-utils)")
	}
}

func imageInfo(t *testing.T, path string) map[string]any {
	t.Helper()
	out, err := exec.Command(QEMUImg, "info", "--output=json", "-U", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCreateBlankAndOverlay(t *testing.T) {
	needQEMUImg(t)
	ctx := context.Background()
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	if err := CreateBlank(ctx, base, 64<<20); err != nil {
		t.Fatal(err)
	}
	if f, err := DetectDiskFormat(base); err != nil || f != FormatQCOW2 {
		t.Fatalf("DetectDiskFormat(blank) = %q, %v", f, err)
	}
	if n, err := VirtualSize(ctx, base); err != nil || n != 64<<20 {
		t.Fatalf("VirtualSize = %d, %v", n, err)
	}

	// A relative base path must still work: qemu-img would resolve it against the
	// overlay's directory.
	t.Chdir(dir)
	for _, tc := range []struct {
		name      string
		size, got int64
	}{
		{"same.qcow2", 0, 64 << 20},
		{"smaller.qcow2", 1 << 20, 64 << 20},
		{"bigger.qcow2", 128 << 20, 128 << 20},
	} {
		ov := filepath.Join(t.TempDir(), tc.name)
		if err := CreateOverlay(ctx, "base.qcow2", FormatQCOW2, ov, tc.size); err != nil {
			t.Fatal(err)
		}
		info := imageInfo(t, ov)
		if info["backing-filename"] != base || info["backing-filename-format"] != "qcow2" {
			t.Errorf("%s: backing %v (%v), want %s", tc.name, info["backing-filename"], info["backing-filename-format"], base)
		}
		if n, err := VirtualSize(ctx, ov); err != nil || n != tc.got {
			t.Errorf("%s: VirtualSize = %d, %v; want %d", tc.name, n, err, tc.got)
		}
	}

	// An empty format is detected from the base's content.
	raw := filepath.Join(dir, "raw.img")
	if err := exec.Command(QEMUImg, "create", "-q", "-f", "raw", raw, "1M").Run(); err != nil {
		t.Fatal(err)
	}
	if err := CreateOverlay(ctx, raw, "", filepath.Join(dir, "ov-raw.qcow2"), 0); err == nil || !strings.Contains(err.Error(), "not a disk image") {
		t.Errorf("overlay over an all-zero raw file: %v, want ErrNotDisk", err)
	}
	if err := CreateOverlay(ctx, raw, FormatRaw, filepath.Join(dir, "ov-raw.qcow2"), 0); err != nil {
		t.Errorf("overlay over raw with an explicit format: %v", err)
	}
}

func TestQEMUImgErrorsCarryStderr(t *testing.T) {
	needQEMUImg(t)
	ctx := context.Background()
	_, err := VirtualSize(ctx, filepath.Join(t.TempDir(), "missing.qcow2"))
	if err == nil || !strings.Contains(err.Error(), "No such file") {
		t.Errorf("VirtualSize(missing) = %v; want qemu-img's message", err)
	}
	if err := CreateBlank(ctx, filepath.Join(t.TempDir(), "x.qcow2"), 0); err == nil {
		t.Error("CreateBlank with size 0 succeeded")
	}
	if err := CreateBlank(ctx, filepath.Join(t.TempDir(), "no", "dir", "x.qcow2"), 1<<20); err == nil || !strings.Contains(err.Error(), "qemu-img create") {
		t.Errorf("CreateBlank into a missing dir: %v", err)
	}
}
