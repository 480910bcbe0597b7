package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// RequireRoot skips a test that needs CAP_NET_ADMIN (or root for other reasons).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
}

// NetNS is a named network namespace made for one test and deleted with it.
type NetNS struct {
	Name string
	Path string
	h    netns.NsHandle
}

// NewNetNS creates a named namespace ("cbxt" + random hex) without moving the
// test's thread into it, and deletes it when the test ends.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	RequireRoot(t)
	name := Unique("cbxt")
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
			// Leave the thread locked: the runtime discards it when this goroutine
			// ends, so no other goroutine runs in the wrong namespace.
			errc <- serr
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	ns := &NetNS{Name: name, Path: filepath.Join("/run/netns", name), h: h}
	t.Cleanup(func() {
		ns.h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return ns
}

// Fd is the namespace's file descriptor, for netlink calls that place a link in it.
func (ns *NetNS) Fd() int { return int(ns.h) }

// Do runs fn on an OS thread that has entered ns: sockets created and processes
// started by fn live in ns.
func (ns *NetNS) Do(fn func() error) error {
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
			errc <- err // the thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// MustDo is Do failing the test on error.
func (ns *NetNS) MustDo(t testing.TB, fn func() error) {
	t.Helper()
	if err := ns.Do(fn); err != nil {
		t.Fatal(err)
	}
}
