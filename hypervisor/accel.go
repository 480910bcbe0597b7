package hypervisor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Accel is a QEMU accelerator.
type Accel string

// The accelerators cloudbox uses.
const (
	KVM Accel = "kvm"
	TCG Accel = "tcg"
)

// kvmDevice and probeTimeout are variables so tests can point them elsewhere.
var (
	kvmDevice    = "/dev/kvm"
	probeTimeout = 3 * time.Second
)

// ProbeAccel picks the accelerator. want is "auto" (or empty), "kvm" or "tcg". "tcg" and
// "kvm" are taken as asked, without a probe ("kvm" only checks that /dev/kvm opens).
// auto uses KVM only when a guest really runs under it: on some hosts /dev/kvm opens but
// Linux guests hang while decompressing (a nested PVM hypervisor), so auto boots
// probeKernel (a bzImage) under KVM and waits up to about 3 s for the kernel's
// "Linux version" line on serial. Anything else, or no probeKernel, gives TCG. The string
// is a human reason, e.g. "kvm: probe guest booted in 0.4s". The error is non-nil only
// for a bad want, "kvm" without a usable /dev/kvm, or ctx ending.
func ProbeAccel(ctx context.Context, qemuBin, want, probeKernel string) (Accel, string, error) {
	if qemuBin == "" {
		qemuBin = DefaultQEMU
	}
	switch want {
	case "tcg":
		return TCG, "tcg: requested", nil
	case "kvm":
		if err := openKVM(); err != nil {
			return "", "", fmt.Errorf("accelerator kvm requested: %w", err)
		}
		return KVM, "kvm: requested", nil
	case "auto", "":
	default:
		return "", "", fmt.Errorf("accelerator %q: want auto, kvm or tcg", want)
	}
	if err := openKVM(); err != nil {
		return TCG, "tcg: " + err.Error(), nil
	}
	if probeKernel == "" {
		return TCG, "tcg: no probe kernel to test KVM with", nil
	}
	took, why, err := probeKVM(ctx, qemuBin, probeKernel, probeTimeout)
	if err != nil {
		return "", "", err
	}
	if why != "" {
		return TCG, "tcg: KVM probe guest " + why, nil
	}
	return KVM, fmt.Sprintf("kvm: probe guest booted in %.1fs", took.Seconds()), nil
}

func openKVM() error {
	f, err := os.OpenFile(kvmDevice, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// probeKVM boots kernel under KVM until it prints its banner. It returns how long that
// took, or why it failed (empty on success); err only when ctx ended.
func probeKVM(ctx context.Context, qemuBin, kernel string, timeout time.Duration) (time.Duration, string, error) {
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(pctx, qemuBin,
		"-machine", "pc", "-accel", "kvm", "-cpu", "host", "-m", "128",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", kernel, "-append", "console=ttyS0 panic=-1",
		"-serial", "stdio")
	// QEMU asserts and aborts on some broken KVMs: keep any core file out of the
	// caller's directory.
	cmd.Dir = os.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	cmd.WaitDelay = time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, "", err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return 0, "", ctx.Err()
		}
		return 0, "could not start: " + err.Error(), nil
	}
	found := make(chan bool, 1)
	printed := false
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			printed = true
			if strings.Contains(sc.Text(), "Linux version") {
				found <- true
				cancel()
				io.Copy(io.Discard, out)
				return
			}
		}
		found <- false
	}()
	ok := <-found
	took := time.Since(start)
	werr := cmd.Wait()
	if ok {
		return took, "", nil
	}
	if ctx.Err() != nil {
		return 0, "", ctx.Err()
	}
	if pctx.Err() != nil {
		if printed {
			return 0, fmt.Sprintf("printed no kernel banner in %s", timeout), nil
		}
		return 0, fmt.Sprintf("printed nothing in %s", timeout), nil
	}
	msg := strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	if errors.As(werr, &ee) && msg == "" {
		msg = ee.Error()
	}
	return 0, "failed: " + firstLine(msg), nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// limitedWriter keeps the first n bytes and drops the rest, so a chatty QEMU cannot grow
// memory without bound.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
