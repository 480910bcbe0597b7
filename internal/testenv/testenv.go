// Package testenv gives tests host-wide names of their own and removes them after,
// so that packages can run their tests in parallel on one machine.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// Unique returns prefix followed by random hex, short enough for interface names.
func Unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// CgroupParent returns a cgroup path unique to the test and removes it from every
// hierarchy when the test ends (the runtime removes the pods under it; the parent
// itself is the test's to remove).
func CgroupParent(t testing.TB) string {
	name := Unique("cloudbox-test-")
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
		if d := "/sys/fs/cgroup/" + name; exists(d) {
			dirs = append(dirs, d)
		}
		if d := "/sys/fs/cgroup/unified/" + name; exists(d) {
			dirs = append(dirs, d)
		}
		for _, d := range dirs {
			_ = os.Remove(d)
		}
	})
	return "/" + name
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// IfName returns prefix followed by random hex, cut to 15 bytes: the limit of a
// network interface's name.
func IfName(prefix string) string {
	name := Unique(prefix)
	return name[:min(len(name), 15)]
}
