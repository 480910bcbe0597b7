// Package testimage builds a busybox container image from Debian's busybox-static,
// offline, for tests and benchmarks: nothing is downloaded and nothing is committed.
package testimage

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

// ErrNoBusybox means busybox-static is not installed (or the busybox found is
// dynamically linked, which cannot run from an image without its libc).
var ErrNoBusybox = errors.New("needs Debian's busybox-static at " + BusyboxPath)

// Busybox returns an image with the static busybox, a link for every applet, a
// passwd file and a world-writable /tmp; its command is sh.
func Busybox() (v1.Image, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoBusybox, err)
	}
	ef, err := elf.NewFile(bytes.NewReader(bb))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", BusyboxPath, err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%w: %s is dynamically linked", ErrNoBusybox, BusyboxPath)
		}
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(n string, mode int64) {
		_ = tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: mode})
	}
	file := func(n string, mode int64, body []byte) {
		_ = tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body))})
		_, _ = tw.Write(body)
	}
	dir("bin/", 0o755)
	dir("etc/", 0o755)
	dir("root/", 0o700)
	dir("tmp/", 0o1777)
	dir("var/", 0o755)
	dir("var/www/", 0o755)
	file("bin/busybox", 0o755, bb)
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			_ = tw.WriteHeader(&tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
		}
	}
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"))
	file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	file("var/www/index.html", 0o644, []byte("hello from cloudbox\n"))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Cmd = []string{"sh"}
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cfg.Config.WorkingDir = "/"
	return mutate.ConfigFile(img, cfg)
}

// WriteBusyboxTarball writes the busybox image as a `docker save` tarball tagged ref.
func WriteBusyboxTarball(path, ref string) error {
	img, err := Busybox()
	if err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, img)
}
