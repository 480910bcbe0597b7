package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if !isRoot() {
		t.Skip("needs root: layers are stored with overlay whiteouts (mknod 0/0, trusted.overlay xattrs)")
	}
}

func openStore(t *testing.T, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// mountImage stacks the image's layers with overlayfs, read-only, as the runtime will.
func mountImage(t *testing.T, s *Store, img *Image) string {
	t.Helper()
	dirs := s.LayerDirs(img)
	slices.Reverse(dirs)
	mnt := t.TempDir()
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(dirs, ":")); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	return mnt
}

// checkBusybox checks a pulled test image: its record, its layer dirs, and, stacked by
// overlayfs, a rootfs that busybox runs in with the upper layer's whiteouts applied.
func checkBusybox(t *testing.T, s *Store, img *Image, want v1.Image) {
	t.Helper()
	if d := digestString(t, want.Digest); img.Digest != d {
		t.Errorf("digest %s, want %s", img.Digest, d)
	}
	if id := digestString(t, want.ConfigName); img.ID != id {
		t.Errorf("id %s, want %s", img.ID, id)
	}
	if !slices.Equal(img.Config.Cmd, []string{"sh"}) || img.Config.WorkingDir != "/" || len(img.Config.Env) != 1 ||
		!strings.HasPrefix(img.Config.Env[0], "PATH=") || !slices.Equal(img.Config.ExposedPorts, []string{"80/tcp"}) {
		t.Errorf("config %+v", img.Config)
	}
	if img.OS != "linux" || img.Architecture != "amd64" || len(img.Layers) != 2 || img.Size <= 0 {
		t.Errorf("record %+v", img)
	}
	dirs := s.LayerDirs(img)
	if len(dirs) != 2 {
		t.Fatalf("layer dirs %v", dirs)
	}
	if l, err := os.Readlink(filepath.Join(dirs[0], "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	isWhiteout(t, filepath.Join(dirs[1], "etc/removeme"))
	isOpaque(t, filepath.Join(dirs[1], "data"))

	mnt := mountImage(t, s, img)
	absent(t, filepath.Join(mnt, "etc/removeme"))
	cmd := exec.Command("/bin/sh", "-c", "ls /data; cat /etc/motd; echo $0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: mnt}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run busybox in the image: %v: %s", err, out)
	}
	if got := string(out); got != "c\nhello from cloudbox\n/bin/sh\n" {
		t.Errorf("busybox in the image said %q", got)
	}
}

func TestPull(t *testing.T) {
	requireRoot(t)
	base, upper := busyboxLayers(t)
	registry := startRegistry(t)
	busybox := testImage(t, "amd64", base, upper)
	other := testImage(t, "amd64", base, layerOf(t, tentry{name: "other", body: "other"}))
	push(t, registry+"/library/busybox:1.36", busybox)
	push(t, registry+"/other:1", other)
	p := newProxy(t, registry, "", "")
	ctx := context.Background()

	t.Run("insecure registry", func(t *testing.T) {
		const fake = "registry.test:5000"
		tr := hostTransport(map[string]string{fake: p.host()})
		_, err := openStore(t, Options{Transport: tr}).Pull(ctx, fake+"/library/busybox:1.36", PullAlways, nil)
		if err == nil {
			t.Fatal("pulled over plain HTTP from a registry not configured insecure")
		}
		s := openStore(t, Options{Transport: tr, InsecureRegistries: []string{fake}})
		var mu sync.Mutex
		done := map[string]Progress{}
		img, err := s.Pull(ctx, fake+"/library/busybox:1.36", PullIfNotPresent, func(pr Progress) {
			mu.Lock()
			defer mu.Unlock()
			if pr.Status == "done" {
				done[pr.Layer] = pr
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if img.Ref != fake+"/library/busybox:1.36" {
			t.Errorf("ref %q", img.Ref)
		}
		checkBusybox(t, s, img, busybox)
		if len(done) != 2 {
			t.Errorf("progress reported %d layers done, want 2: %v", len(done), done)
		}
		for _, pr := range done {
			if pr.Done != pr.Total || pr.Total <= 0 || pr.Ref != img.Ref {
				t.Errorf("progress %+v", pr)
			}
		}
		got, err := s.Get(fake + "/library/busybox:1.36")
		if err != nil || got.Digest != img.Digest {
			t.Errorf("Get: %+v, %v", got, err)
		}
	})

	t.Run("insecure registry with a self-signed certificate", func(t *testing.T) {
		srv := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: registry}))
		defer srv.Close()
		host := strings.TrimPrefix(srv.URL, "https://")
		if _, err := openStore(t, Options{}).Pull(ctx, host+"/other:1", PullAlways, nil); err == nil {
			t.Fatal("pulled over HTTPS with an unverified certificate from a registry not configured insecure")
		}
		if _, err := openStore(t, Options{InsecureRegistries: []string{host}}).Pull(ctx, host+"/other:1", PullAlways, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("policies", func(t *testing.T) {
		s := openStore(t, Options{})
		ref := p.host() + "/library/busybox:1.36"
		_, err := s.Pull(ctx, ref, PullNever, nil)
		if want := fmt.Sprintf("image %q is not present and imagePullPolicy is Never", ref); err == nil || err.Error() != want {
			t.Fatalf("Never: %v, want %q", err, want)
		}
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Never error does not wrap ErrNotFound")
		}
		p.take()
		first, err := s.Pull(ctx, ref, PullIfNotPresent, nil)
		if err != nil {
			t.Fatal(err)
		}
		if reqs := p.take(); len(reqs) == 0 {
			t.Fatal("first pull did not reach the registry")
		}
		if _, err := s.Pull(ctx, ref, PullIfNotPresent, nil); err != nil {
			t.Fatal(err)
		}
		if img, err := s.Pull(ctx, ref, PullNever, nil); err != nil || img.Digest != first.Digest {
			t.Fatalf("Never with the image present: %v", err)
		}
		if reqs := p.take(); len(reqs) != 0 {
			t.Errorf("IfNotPresent and Never reached the registry: %v", reqs)
		}
		if _, err := s.Pull(ctx, ref, PullAlways, nil); err != nil {
			t.Fatal(err)
		}
		reqs := p.take()
		if !slices.ContainsFunc(reqs, func(r string) bool { return strings.Contains(r, "/manifests/1.36") }) {
			t.Errorf("Always did not ask for the manifest: %v", reqs)
		}
		for _, l := range first.Layers {
			if slices.ContainsFunc(reqs, func(r string) bool { return strings.HasSuffix(r, l.Digest) }) {
				t.Errorf("Always downloaded stored layer %s again", l.Digest)
			}
		}
		if _, err := s.Pull(ctx, ref, "Sometimes", nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("unknown policy: %v", err)
		}
	})

	t.Run("mirror for docker.io", func(t *testing.T) {
		s := openStore(t, Options{Mirrors: map[string]string{"docker.io": p.URL}})
		p.take()
		img, err := s.Pull(ctx, "busybox:1.36", PullIfNotPresent, nil)
		if err != nil {
			t.Fatal(err)
		}
		if img.Ref != "docker.io/library/busybox:1.36" {
			t.Errorf("ref %q", img.Ref)
		}
		if !slices.Contains(p.take(), "GET /v2/library/busybox/manifests/1.36") {
			t.Error("the mirror was not asked for library/busybox:1.36")
		}
		checkBusybox(t, s, img, busybox)
		if _, err := s.Get("docker.io/busybox:1.36"); err != nil {
			t.Errorf("Get by another spelling: %v", err)
		}
	})

	t.Run("mirror down falls back to the registry", func(t *testing.T) {
		dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		s := openStore(t, Options{Mirrors: map[string]string{p.host(): dead}})
		start := time.Now()
		img, err := s.Pull(ctx, p.host()+"/other:1", PullAlways, nil)
		if err != nil {
			t.Fatal(err)
		}
		if img.Digest != digestString(t, other.Digest) {
			t.Errorf("digest %s", img.Digest)
		}
		t.Logf("pull with a dead mirror took %v", time.Since(start))
	})

	t.Run("basic auth", func(t *testing.T) {
		auth := newProxy(t, registry, "cloud", "s3cret")
		ref := auth.host() + "/other:1"
		if _, err := openStore(t, Options{}).Pull(ctx, ref, PullAlways, nil); err == nil {
			t.Fatal("anonymous pull from a registry that wants auth succeeded")
		}
		if _, err := openStore(t, Options{Auth: map[string]Credentials{auth.host(): {"cloud", "wrong"}}}).Pull(ctx, ref, PullAlways, nil); err == nil {
			t.Fatal("pull with a wrong password succeeded")
		}
		s := openStore(t, Options{Auth: map[string]Credentials{auth.host(): {"cloud", "s3cret"}}})
		if _, err := s.Pull(ctx, ref, PullAlways, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("platform from an index", func(t *testing.T) {
		arm := testImage(t, "arm64", layerOf(t, tentry{name: "arm", body: "arm"}))
		idx := mutate.AppendManifests(empty.Index,
			mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
			mutate.IndexAddendum{Add: busybox, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		)
		r, _ := name.ParseReference(registry + "/multi:1")
		if err := remote.WriteIndex(r, idx); err != nil {
			t.Fatal(err)
		}
		s := openStore(t, Options{})
		img, err := s.Pull(ctx, registry+"/multi:1", PullAlways, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkBusybox(t, s, img, busybox)
		_, err = openStore(t, Options{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}).Pull(ctx, registry+"/multi:1", PullAlways, nil)
		if err == nil {
			t.Error("pulled an index without the node's platform")
		}
	})

	t.Run("ref counting and prune", func(t *testing.T) {
		s := openStore(t, Options{})
		a, err := s.Pull(ctx, registry+"/library/busybox:1.36", PullAlways, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Pull(ctx, registry+"/other:1", PullAlways, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Layers[0].DiffID != b.Layers[0].DiffID {
			t.Fatal("test images do not share their base layer")
		}
		if freed, err := s.Prune(); err != nil || freed != 0 {
			t.Fatalf("prune with everything in use freed %d, %v", freed, err)
		}
		if err := s.Remove(a.Ref); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(a.Ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Remove: %v", err)
		}
		if _, err := s.Get(a.Ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Remove: %v", err)
		}
		aDirs, bDirs := s.LayerDirs(a), s.LayerDirs(b)
		if !exists(aDirs[1]) {
			t.Fatal("Remove deleted a layer before Prune")
		}
		freed, err := s.Prune()
		if err != nil {
			t.Fatal(err)
		}
		if freed < int64(len("c")) {
			t.Errorf("freed %d", freed)
		}
		if exists(aDirs[1]) {
			t.Error("unreferenced layer survived Prune")
		}
		for _, d := range bDirs {
			if !exists(d) {
				t.Errorf("Prune deleted %s, still used by %s", d, b.Ref)
			}
		}
		for _, l := range a.Layers[1:] {
			if h, _ := hexOf(l.Digest); exists(s.blobPath(h)) {
				t.Errorf("blob %s survived Prune", l.Digest)
			}
		}
		if h, _ := hexOf(b.Layers[0].Digest); !exists(s.blobPath(h)) {
			t.Error("Prune deleted the shared base blob")
		}

		release := s.Hold(b)
		if err := s.Remove(b.Ref); err != nil {
			t.Fatal(err)
		}
		if freed, err := s.Prune(); err != nil || freed != 0 {
			t.Errorf("Prune of held layers freed %d, %v", freed, err)
		}
		release()
		freed, err = s.Prune()
		if err != nil || freed < int64(len(requireBusybox(t))) {
			t.Errorf("last Prune freed %d, %v", freed, err)
		}
		for _, d := range []string{"layers", "blobs/sha256"} {
			if ents, _ := os.ReadDir(filepath.Join(s.root, d)); len(ents) != 0 {
				t.Errorf("%s not empty after pruning everything: %v", d, ents)
			}
		}
		if len(s.List()) != 0 {
			t.Errorf("List: %v", s.List())
		}
	})

	t.Run("concurrent pulls share layers", func(t *testing.T) {
		s := openStore(t, Options{})
		p.take()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			ref := p.host() + "/library/busybox:1.36"
			if i%2 == 1 {
				ref = p.host() + "/other:1"
			}
			wg.Go(func() { _, errs[i] = s.Pull(ctx, ref, PullAlways, nil) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		base := digestString(t, base.Digest)
		n := 0
		for _, r := range p.take() {
			if r == "GET /v2/library/busybox/blobs/"+base || r == "GET /v2/other/blobs/"+base {
				n++
			}
		}
		if n != 1 {
			t.Errorf("shared base layer downloaded %d times", n)
		}
		if len(s.List()) != 2 {
			t.Errorf("List: %d images", len(s.List()))
		}
	})
}

func TestStoreReopen(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
	base, upper := busyboxLayers(t)
	var buf bytes.Buffer
	tag, _ := name.NewTag("example.com/busybox:1")
	if err := tarball.Write(tag, testImage(t, "amd64", base, upper), &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	before := s.List()
	// Leftovers of an interrupted pull are cleaned up at Open.
	os.MkdirAll(filepath.Join(root, "layers", ".tmp-abc-1"), 0o755)
	os.WriteFile(filepath.Join(root, "tmp", "blob-1"), nil, 0o600)
	s.Close()
	s, err = Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after := s.List()
	if len(after) != 1 || after[0].Digest != before[0].Digest || after[0].Ref != "example.com/busybox:1" || !slices.Equal(after[0].DiffIDs(), before[0].DiffIDs()) {
		t.Errorf("after reopening: %+v, before %+v", after, before)
	}
	absent(t, filepath.Join(root, "layers", ".tmp-abc-1"))
	absent(t, filepath.Join(root, "tmp", "blob-1"))
}
