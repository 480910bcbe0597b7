package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// requireRoot skips tests that need CAP_NET_ADMIN.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
}

// uniqueName returns prefix followed by random hex, at most 15 bytes.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, (15-len(prefix))/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// testNS is a named network namespace made for one test and deleted with it.
type testNS struct {
	Name string
	Path string
	h    netns.NsHandle
}

// newNS creates a named namespace without moving the test's thread into it.
func newNS(t *testing.T) *testNS {
	t.Helper()
	requireRoot(t)
	name := uniqueName(t, "cbxt")
	errc := make(chan error, 1)
	var h netns.NsHandle
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		h, err = netns.NewNamed(name) // also switches this thread into it
		if serr := netns.Set(orig); serr != nil {
			// Leave the thread locked: the runtime discards it when this
			// goroutine ends, so no other goroutine runs in the wrong netns.
			errc <- serr
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	ns := &testNS{Name: name, Path: filepath.Join("/run/netns", name), h: h}
	t.Cleanup(func() {
		ns.h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return ns
}

// inNetNS runs fn on an OS thread that has entered ns. Sockets created and
// processes started by fn live in ns.
func inNetNS(t *testing.T, ns *testNS, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns.h); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- err // thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// mustInNetNS is inNetNS failing the test on error.
func mustInNetNS(t *testing.T, ns *testNS, fn func() error) {
	t.Helper()
	if err := inNetNS(t, ns, fn); err != nil {
		t.Fatal(err)
	}
}
