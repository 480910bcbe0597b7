// Package testguest builds the small Linux guest that VM tests and benchmarks boot:
// Debian's cloud kernel and a busybox initramfs, made offline by
// testdata/vm/build-guest.sh and cached outside the repository, so nothing is committed.
//
// The guest prints on its serial console (ttyS0):
//
//	CLOUDBOX-GUEST-BOOTED
//	cloudbox-guest: hostname=<local-hostname from the NoCloud seed>
//	cloudbox-guest: user-data begin
//	<user-data>
//	cloudbox-guest: user-data end
//	cloudbox-guest: public-keys=<count>
//	cloudbox-guest: address=<CIDR from network-config>
//	cloudbox-guest: ready
//
// or "cloudbox-guest: no seed" instead of the seed lines, then, as they happen,
// "cloudbox-guest: disk present|added|removed vdX" and, on an ACPI power button
// (QMP system_powerdown), "cloudbox-guest: powering off" before it powers off. It serves
// "hello from <hostname>" over HTTP on port 80 and keeps a root shell on the console.
package testguest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Marker is the first line the guest prints once its init runs.
const Marker = "CLOUDBOX-GUEST-BOOTED"

// Ready is the line the guest prints once it has read its seed and started its services.
const Ready = "cloudbox-guest: ready"

// Guest is a built guest; every path is absolute and inside Dir.
type Guest struct {
	Dir     string
	Kernel  string // bzImage, for qemu -kernel
	Initrd  string // gzip'd cpio, for qemu -initrd
	Disk    string // qcow2 that boots the same kernel and initrd through syslinux (SeaBIOS)
	Cmdline string // the default kernel command line, for qemu -append
}

// ErrMissingTool means a program the build needs is not installed.
var ErrMissingTool = errors.New("missing prerequisite (scripts/lib.sh deps installs it)")

// tools are what build-guest.sh runs, with the Debian package that has each.
var tools = [][2]string{
	{"apt-get", "apt"}, {"dpkg-deb", "dpkg"}, {"cpio", "cpio"}, {"gzip", "gzip"},
	{"qemu-img", "qemu-utils"}, {"syslinux", "syslinux"}, {"mcopy", "mtools"},
	{"mkfs.vfat", "dosfstools"}, {"flock", "util-linux"},
}

var (
	once     sync.Once
	built    *Guest
	buildErr error
)

// Build builds the guest once per process (the script itself reuses an earlier build)
// and fails the test if that is impossible: CI installs every prerequisite, so a missing
// one is a broken setup, not a reason to skip.
func Build(t testing.TB) *Guest {
	t.Helper()
	once.Do(func() { built, buildErr = BuildDir(context.Background()) })
	if buildErr != nil {
		t.Fatalf("test guest: %v", buildErr)
	}
	return built
}

// BuildDir runs the build script, which puts the guest under $CLOUDBOX_CACHE (default
// /var/cache/cloudbox)/guest, and returns it. It is for benchmarks and programs; tests
// call Build.
func BuildDir(ctx context.Context) (*Guest, error) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool[0]); err != nil {
			return nil, fmt.Errorf("%w: %s (Debian package %s)", ErrMissingTool, tool[0], tool[1])
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		return nil, fmt.Errorf("%w: /bin/busybox (Debian package busybox-static)", ErrMissingTool)
	}
	script, err := scriptPath()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "bash", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	dir := lines[len(lines)-1]
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("%s printed %q, which is not a built guest: %w", script, dir, err)
	}
	return &Guest{
		Dir:     dir,
		Kernel:  filepath.Join(dir, "vmlinuz"),
		Initrd:  filepath.Join(dir, "initrd.img"),
		Disk:    filepath.Join(dir, "disk.qcow2"),
		Cmdline: strings.TrimSpace(string(cmdline)),
	}, nil
}

// scriptPath finds testdata/vm/build-guest.sh: from this source file, so that tests in
// any package find it whatever their working directory; else (a binary built with
// -trimpath, as scripts/lib.sh builds cloudbox, has no source paths) from the working
// directory or one of its parents, so `cloudbox bench vm` works from the repository.
func scriptPath() (string, error) {
	const rel = "testdata/vm/build-guest.sh"
	var tried []string
	if _, self, _, ok := runtime.Caller(0); ok && filepath.IsAbs(self) {
		p := filepath.Join(filepath.Dir(self), "..", "..", rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			p := filepath.Join(dir, rel)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			tried = append(tried, p)
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("testguest: no %s (run from the cloudbox repository); looked at %s", rel, strings.Join(tried, ", "))
}
