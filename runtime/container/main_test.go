package container

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"go.uber.org/zap/zaptest"
)

// The test binary is its own container init: libcontainer re-executes
// /proc/self/exe with argv [os.Args[0], "init"].
//
// helperEnv makes the test binary act as a short-lived agent that creates
// and starts one container and exits, for the Recover tests: the container
// then really is not a child of the test process.
const helperEnv = "CLOUDBOX_CONTAINER_TEST_HELPER"

// busyboxPath is where Debian's busybox-static installs the static busybox.
var busyboxPath = "/bin/busybox"

var (
	baseRootfsOnce sync.Once
	baseRootfsDir  string
	baseRootfsErr  error
	tmpRoot        string
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		Init()
	}
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper(os.Getenv(helperEnv)))
	}
	var err error
	tmpRoot, err = os.MkdirTemp("", "cloudbox-container-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// helperRequest is what a helper agent is asked to do.
type helperRequest struct {
	StateRoot    string
	CgroupParent string
	Spec         Spec
}

func runHelper(req string) int {
	var r helperRequest
	if err := json.Unmarshal([]byte(req), &r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	m, err := New(Config{StateRoot: r.StateRoot, CgroupParent: r.CgroupParent})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	if _, err := m.Create(ctx, r.Spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := m.Start(ctx, r.Spec.ID); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Exit without Stop or Destroy, as an agent that is restarted.
	return 0
}

// requireRoot skips tests that need real containers when their
// prerequisites are missing.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create namespaces, cgroups and mounts")
	}
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skipf("needs a static busybox at %s (Debian package busybox-static): %v", busyboxPath, err)
	}
}

// baseRootfs is a busybox root filesystem shared read-only by the tests
// (as an overlay lower layer; tests that need a plain writable rootfs copy
// it with plainRootfs).
func baseRootfs(t testing.TB) string {
	t.Helper()
	baseRootfsOnce.Do(func() {
		baseRootfsDir = filepath.Join(tmpRoot, "busybox")
		baseRootfsErr = buildBusyboxRootfs(baseRootfsDir)
	})
	if baseRootfsErr != nil {
		t.Fatalf("busybox rootfs: %v", baseRootfsErr)
	}
	return baseRootfsDir
}

// buildBusyboxRootfs copies the static busybox into dir/bin with a symlink
// per applet, and writes a minimal /etc.
func buildBusyboxRootfs(dir string) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/app", "mnt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := os.Chown(filepath.Join(dir, "home/app"), 1000, 1000); err != nil {
		return err
	}
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" || name == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", name)); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// plainRootfs copies the base rootfs into a directory the container may
// write to directly.
func plainRootfs(t testing.TB) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", baseRootfs(t), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp rootfs: %v: %s", err, out)
	}
	return dst
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uniqueID makes a container or pod ID from the test name.
func uniqueID(t testing.TB, what string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return strings.Trim(name, "-") + "-" + what + "-" + randomSuffix()
}

// newManager returns a Manager on a fresh StateRoot and cgroup parent,
// and checks at the end that the test left no container, cgroup or mount
// behind.
func newManager(t testing.TB, tweak ...func(*Config)) *Manager {
	t.Helper()
	requireRoot(t)
	cfg := Config{
		StateRoot:    filepath.Join(t.TempDir(), "state"),
		CgroupParent: "/cloudbox-test-" + randomSuffix(),
		Logger:       zaptest.NewLogger(t),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupManager(t, m) })
	return m
}

func cleanupManager(t testing.TB, m *Manager) {
	states, err := m.List()
	if err != nil {
		t.Errorf("list: %v", err)
	}
	for _, st := range states {
		if err := m.Destroy(st.ID); err != nil {
			t.Errorf("destroy %s: %v", st.ID, err)
		}
	}
	pods, _ := os.ReadDir(m.podRoot)
	for _, p := range pods {
		if err := m.RemovePod(p.Name()); err != nil {
			t.Errorf("remove pod %s: %v", p.Name(), err)
		}
	}
	m.Close()
	// Cgroups: the test's parent must be empty; remove it.
	mounts, _ := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	for _, mi := range mounts {
		dir := filepath.Join(mi.Mountpoint, m.cfg.CgroupParent)
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			entries, _ := os.ReadDir(dir)
			var left []string
			for _, e := range entries {
				if e.IsDir() {
					left = append(left, e.Name())
				}
			}
			t.Errorf("cgroup %s left behind (children %v): %v", dir, left, err)
		}
	}
	// Mounts: nothing under the state root.
	left, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(m.cfg.StateRoot))
	for _, mi := range left {
		t.Errorf("mount left behind: %s (%s)", mi.Mountpoint, mi.FSType)
	}
}

// busybox returns a Spec running args in an overlay over the base rootfs.
func busybox(t testing.TB, args ...string) Spec {
	return Spec{
		ID:              uniqueID(t, "c"),
		RootfsLowerDirs: []string{baseRootfs(t)},
		Args:            args,
	}
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run creates, starts and waits for a container and returns its exit
// status and log.
func run(t testing.TB, m *Manager, s Spec) (ExitStatus, string) {
	t.Helper()
	ctx := testContext(t)
	if _, err := m.Create(ctx, s); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := m.Start(ctx, s.ID); err != nil {
		t.Fatalf("start: %v", err)
	}
	exit, err := m.Wait(ctx, s.ID)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return exit, readLog(t, m, s.ID)
}

func readLog(t testing.TB, m *Manager, id string) string {
	t.Helper()
	var b strings.Builder
	if err := m.Logs(context.Background(), id, false, &b); err != nil {
		t.Fatalf("logs: %v", err)
	}
	return b.String()
}

// startLong starts a container that runs until stopped.
func startLong(t testing.TB, m *Manager, s Spec) {
	t.Helper()
	ctx := testContext(t)
	if _, err := m.Create(ctx, s); err != nil {
		t.Fatalf("create %s: %v", s.ID, err)
	}
	if err := m.Start(ctx, s.ID); err != nil {
		t.Fatalf("start %s: %v", s.ID, err)
	}
}

// execOut runs a command in a running container and returns its stdout.
func execOut(t testing.TB, m *Manager, id string, args ...string) (string, int) {
	t.Helper()
	var out, errb strings.Builder
	code, err := m.Exec(testContext(t), id, ExecSpec{Args: args, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatalf("exec %v: %v", args, err)
	}
	return out.String() + errb.String(), code
}
