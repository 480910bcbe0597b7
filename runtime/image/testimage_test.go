package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// busyboxPath is Debian's busybox-static: one static binary, so an image needs nothing else.
const busyboxPath = "/bin/busybox"

func requireBusybox(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(busyboxPath)
	if err != nil {
		t.Skipf("needs %s (Debian package busybox-static): %v", busyboxPath, err)
	}
	// A dynamically linked busybox would not run from an image without its libc.
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", busyboxPath, err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Skipf("%s is dynamically linked: install Debian's busybox-static", busyboxPath)
		}
	}
	return b
}

func layerOf(t *testing.T, entries ...tentry) v1.Layer {
	t.Helper()
	b := mkTar(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// busyboxLayers returns the test image's layers: busybox with its applets, and an upper
// layer that deletes a file and replaces a directory's content, so whiteouts go end to end.
func busyboxLayers(t *testing.T) (base, upper v1.Layer) {
	bb := requireBusybox(t)
	entries := []tentry{
		{name: "bin/", typ: tar.TypeDir},
		{name: "bin/busybox", body: string(bb), mode: 0o755},
		{name: "etc/", typ: tar.TypeDir},
		{name: "etc/removeme", body: "bye"},
		{name: "data/", typ: tar.TypeDir},
		{name: "data/a", body: "a"},
		{name: "data/b", body: "b"},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	}
	for _, applet := range []string{"sh", "ls", "sleep", "echo", "cat", "httpd"} {
		entries = append(entries, tentry{name: "bin/" + applet, typ: tar.TypeSymlink, link: "busybox"})
	}
	base = layerOf(t, entries...)
	upper = layerOf(t,
		tentry{name: "etc/", typ: tar.TypeDir},
		tentry{name: "etc/.wh.removeme"},
		tentry{name: "etc/motd", body: "hello from cloudbox\n"},
		tentry{name: "data/", typ: tar.TypeDir},
		tentry{name: "data/.wh..wh..opq"},
		tentry{name: "data/c", body: "c"},
	)
	return base, upper
}

// testImage builds an image from layers with the config a busybox image has.
func testImage(t *testing.T, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Config.Cmd = []string{"sh"}
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cfg.Config.WorkingDir = "/"
	cfg.Config.ExposedPorts = map[string]struct{}{"80/tcp": {}}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestString(t *testing.T, f func() (v1.Hash, error)) string {
	t.Helper()
	h, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
