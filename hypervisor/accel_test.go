package hypervisor

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/internal/testguest"
)

func TestProbeAccelTCGDoesNotProbe(t *testing.T) {
	start := time.Now()
	// A binary that does not exist proves no QEMU runs.
	a, reason, err := ProbeAccel(context.Background(), "/nonexistent/qemu", "tcg", "/nonexistent/kernel")
	if err != nil || a != TCG || reason != "tcg: requested" {
		t.Fatalf("ProbeAccel(tcg) = %q, %q, %v", a, reason, err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("ProbeAccel(tcg) took %s", d)
	}
	if _, _, err := ProbeAccel(context.Background(), "", "xen", ""); err == nil {
		t.Error("ProbeAccel(xen) succeeded")
	}
}

func TestProbeAccelAutoWithoutKernel(t *testing.T) {
	a, reason, err := ProbeAccel(context.Background(), "", "auto", "")
	if err != nil || a != TCG {
		t.Fatalf("ProbeAccel(auto, no kernel) = %q, %q, %v", a, reason, err)
	}
	if !strings.HasPrefix(reason, "tcg: ") {
		t.Errorf("reason %q", reason)
	}
	t.Log(reason)
}

// On this kind of host /dev/kvm opens but guests hang (no vmx/svm in the CPU flags:
// nested PVM), so auto must fall back to TCG by probing, and say why.
func TestProbeAccelAuto(t *testing.T) {
	requireQEMU(t)
	g := testguest.Build(t)
	start := time.Now()
	a, reason, err := ProbeAccel(context.Background(), "", "auto", g.Kernel)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("auto -> %s (%s) in %s", a, reason, took.Round(time.Millisecond))
	if !strings.HasPrefix(reason, string(a)+": ") {
		t.Errorf("reason %q does not start with %q", reason, a)
	}
	if took > probeTimeout+3*time.Second {
		t.Errorf("probe took %s", took)
	}
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
	if !regexp.MustCompile(`\b(vmx|svm)\b`).Match(cpuinfo) && a != TCG {
		t.Errorf("no vmx/svm on this CPU, yet auto chose %s", a)
	}
}

func TestProbeAccelCancelled(t *testing.T) {
	if openKVM() != nil {
		t.Skip("no usable /dev/kvm: auto never probes")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a, reason, err := ProbeAccel(ctx, "", "auto", "/nonexistent/kernel"); !errors.Is(err, context.Canceled) {
		t.Fatalf("ProbeAccel(cancelled) = %q, %q, %v; want context.Canceled", a, reason, err)
	}
}
