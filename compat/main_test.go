package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cloudboxBin is the cloudbox binary the tests start servers from ($CLOUDBOX_BIN).
var cloudboxBin string

// kubectlBin is kubectl, built from cmd/kubectl by TestMain.
var kubectlBin string

// TestMain builds the clients the tests run, once, into a directory it removes at
// the end. A missing $CLOUDBOX_BIN fails the run instead of skipping it: CI must not
// pass a suite that ran nothing.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin, err := cloudboxBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		return 1
	}
	cloudboxBin = bin
	dir, err := os.MkdirTemp("", "cloudbox-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if kubectlBin, err = buildKubectl(dir); err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		return 1
	}
	return m.Run()
}

// cloudboxBinary is $CLOUDBOX_BIN as an absolute path, checked to be a file that can
// be run.
func cloudboxBinary() (string, error) {
	bin := os.Getenv("CLOUDBOX_BIN")
	if bin == "" {
		return "", fmt.Errorf("CLOUDBOX_BIN is not set: build bin/cloudbox (bash -c '. scripts/lib.sh && build') and run CLOUDBOX_BIN=$PWD/../bin/cloudbox go test ./...")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return "", fmt.Errorf("CLOUDBOX_BIN: %w", err)
	}
	if st, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("CLOUDBOX_BIN: %w", err)
	} else if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("CLOUDBOX_BIN: %s is not an executable file", bin)
	}
	return bin, nil
}

// buildKubectl builds cmd/kubectl into dir, its version stamped in as Kubernetes'
// own build does (kubectl version, and the User-Agent it sends, read it): release
// v0.X.Y of the k8s.io libraries is Kubernetes v1.X.Y.
func buildKubectl(dir string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "k8s.io/kubectl").Output()
	if err != nil {
		return "", fmt.Errorf("the version of k8s.io/kubectl: %w", err)
	}
	lib := strings.TrimSpace(string(out))
	major, minor, ok := strings.Cut(strings.TrimPrefix(lib, "v0."), ".")
	if !ok || !strings.HasPrefix(lib, "v0.") {
		return "", fmt.Errorf("k8s.io/kubectl %s: not a v0.X.Y release", lib)
	}
	release := "v1." + major + "." + minor
	ldflags := []string{"-s", "-w"}
	for _, pkg := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		ldflags = append(ldflags, "-X", pkg+".gitVersion="+release, "-X", pkg+".gitMajor=1", "-X", pkg+".gitMinor="+major)
	}
	bin := filepath.Join(dir, "kubectl")
	build := exec.Command("go", "build", "-ldflags", strings.Join(ldflags, " "), "-o", bin, "./cmd/kubectl")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/kubectl: %w\n%s", err, out)
	}
	return bin, nil
}
