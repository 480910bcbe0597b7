package container

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// runcPath is Debian's runc package, the peer the benchmark compares with.
const runcPath = "/usr/sbin/runc"

// BenchmarkRunBusybox measures create → start → wait → destroy of busybox
// `true`, on a plain rootfs directory and on an overlay over it, and, when
// runc is installed, bare `runc run` of the same container (the same OCI
// spec, written as config.json) in the same run: runc-ns/op and
// x-runc (our time / runc's).
func BenchmarkRunBusybox(b *testing.B) {
	requireRoot(b)
	quiet := func(c *Config) { c.Logger = zap.NewNop() }
	rootfs := plainRootfs(b)
	for _, variant := range []string{"rootfs", "overlay"} {
		b.Run(variant, func(b *testing.B) {
			m := newManager(b, quiet)
			ctx := context.Background()
			spec := func(i int) Spec {
				s := Spec{ID: fmt.Sprintf("bench-%d-%s", i, randomSuffix()), Args: []string{"true"}}
				if variant == "rootfs" {
					s.Rootfs = rootfs
				} else {
					s.RootfsLowerDirs = []string{rootfs}
				}
				return s
			}
			i := 0
			for b.Loop() {
				s := spec(i)
				i++
				if _, err := m.Create(ctx, s); err != nil {
					b.Fatal(err)
				}
				if err := m.Start(ctx, s.ID); err != nil {
					b.Fatal(err)
				}
				if exit, err := m.Wait(ctx, s.ID); err != nil || exit.Code != 0 {
					b.Fatalf("wait: %+v %v", exit, err)
				}
				if err := m.Destroy(s.ID); err != nil {
					b.Fatal(err)
				}
			}
			ours := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if variant != "rootfs" {
				return
			}
			if _, err := os.Stat(runcPath); err != nil {
				b.Logf("no %s (Debian package runc): no comparison", runcPath)
				return
			}
			runcNs, err := benchRunc(b, m, rootfs, min(b.N, 50))
			if err != nil {
				b.Fatalf("runc: %v", err)
			}
			b.ReportMetric(runcNs, "runc-ns/op")
			b.ReportMetric(ours/runcNs, "x-runc")
		})
	}
}

// benchRunc times `runc run` of `true` n times and returns ns per run.
func benchRunc(b *testing.B, m *Manager, rootfs string, n int) (float64, error) {
	dir := b.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return 0, err
	}
	u := &execUser{}
	var total time.Duration
	for i := range n {
		id := fmt.Sprintf("runc-bench-%d-%s", i, randomSuffix())
		s := Spec{ID: id, Rootfs: rootfs, Args: []string{"true"}}
		spec := m.buildOCISpec(&s, rootfs, u, nsConfig{}, nil, m.cgroupPath(&s))
		cfg, err := json.Marshal(spec)
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644); err != nil {
			return 0, err
		}
		cmd := exec.Command(runcPath, "--root", filepath.Join(dir, "state"), "run", "--bundle", bundle, id)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		total += time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("%v: %s", err, out)
		}
	}
	return float64(total.Nanoseconds()) / float64(n), nil
}
