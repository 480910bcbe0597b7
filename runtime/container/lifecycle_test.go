package container

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestEchoHiGoesToLog(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "echo", "hi")
	exit, log := run(t, m, s)
	if exit.Code != 0 || exit.Reason != ReasonCompleted || exit.Signal != 0 || exit.OOMKilled {
		t.Errorf("exit = %+v, want code 0 Completed", exit)
	}
	if log != "hi\n" {
		t.Errorf("log = %q, want %q", log, "hi\n")
	}
	if exit.StartedAt.IsZero() || exit.FinishedAt.Before(exit.StartedAt) {
		t.Errorf("times: started %v finished %v", exit.StartedAt, exit.FinishedAt)
	}
	st, err := m.Inspect(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusStopped || st.Exit == nil || st.Exit.Code != 0 {
		t.Errorf("state = %+v", st)
	}
}

func TestPlainRootfsAndStderr(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	rootfs := plainRootfs(t)
	s := Spec{ID: uniqueID(t, "c"), Rootfs: rootfs, Args: []string{"sh", "-c", "echo out; echo err >&2; echo written > /tmp/f"}}
	exit, log := run(t, m, s)
	if exit.Code != 0 {
		t.Fatalf("exit = %+v, log %q", exit, log)
	}
	if log != "out\nerr\n" {
		t.Errorf("log = %q", log)
	}
	// A plain rootfs is written in place.
	if b, err := os.ReadFile(rootfs + "/tmp/f"); err != nil || string(b) != "written\n" {
		t.Errorf("rootfs file: %q, %v", b, err)
	}
}

func TestExitCode3(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	exit, _ := run(t, m, busybox(t, "sh", "-c", "exit 3"))
	if exit.Code != 3 || exit.Reason != ReasonError || exit.Signal != 0 {
		t.Errorf("exit = %+v, want code 3 Error", exit)
	}
}

func TestKilledBySignalIs137(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sleep", "60")
	startLong(t, m, s)
	if err := m.Stop(testContext(t), s.ID, unix.SIGKILL, 0); err != nil {
		t.Fatal(err)
	}
	exit, err := m.Wait(testContext(t), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if exit.Code != 137 || exit.Signal != unix.SIGKILL || exit.Reason != ReasonError || exit.OOMKilled {
		t.Errorf("exit = %+v, want 137 SIGKILL", exit)
	}
}

func TestStopGraceTermHandled(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sh", "-c", `trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.1; done`)
	startLong(t, m, s)
	waitForLog(t, m, s.ID, "ready")
	start := time.Now()
	if err := m.Stop(testContext(t), s.ID, unix.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v; TERM handler should have ended it at once", d)
	}
	exit, _ := m.Wait(testContext(t), s.ID)
	if exit.Code != 0 || exit.Signal != 0 {
		t.Errorf("exit = %+v, want 0 from the trap", exit)
	}
	if log := readLog(t, m, s.ID); !strings.Contains(log, "got TERM") {
		t.Errorf("log = %q, want the trap's output", log)
	}
}

func TestStopGraceThenKill(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sh", "-c", `trap '' TERM; echo ready; while true; do sleep 0.1; done`)
	startLong(t, m, s)
	waitForLog(t, m, s.ID, "ready")
	grace := 500 * time.Millisecond
	start := time.Now()
	if err := m.Stop(testContext(t), s.ID, 0, grace); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < grace {
		t.Errorf("stopped after %v, before the grace of %v", d, grace)
	}
	exit, _ := m.Wait(testContext(t), s.ID)
	if exit.Code != 137 || exit.Signal != unix.SIGKILL {
		t.Errorf("exit = %+v, want 137", exit)
	}
}

func TestDestroyRemovesEverything(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sleep", "60")
	s.Limits = Limits{MemoryBytes: 64 << 20, Pids: 50, CPUMilli: 200}
	startLong(t, m, s)
	st, err := m.Inspect(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusRunning || st.Pid <= 0 || len(st.CgroupPaths) == 0 {
		t.Fatalf("state = %+v", st)
	}
	for _, p := range st.CgroupPaths {
		if !strings.HasSuffix(p, m.cfg.CgroupParent+"/"+s.ID) {
			t.Errorf("cgroup %s is not <mount>%s/%s", p, m.cfg.CgroupParent, s.ID)
		}
	}
	if err := m.Destroy(s.ID); err != nil {
		t.Fatal(err)
	}
	for c, p := range st.CgroupPaths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %q dir %s still exists: %v", c, p, err)
		}
	}
	for _, p := range []string{st.Rootfs, st.LogPath, m.containerDir(s.ID)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists: %v", p, err)
		}
	}
	if _, err := m.Inspect(s.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("inspect after destroy: %v", err)
	}
	if err := unix.Kill(st.Pid, 0); err == nil {
		t.Errorf("init pid %d still alive", st.Pid)
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	ctx := testContext(t)
	root := baseRootfs(t)
	for name, s := range map[string]Spec{
		"no id":          {RootfsLowerDirs: []string{root}, Args: []string{"true"}},
		"bad id":         {ID: "a/b", RootfsLowerDirs: []string{root}, Args: []string{"true"}},
		"no rootfs":      {ID: "x", Args: []string{"true"}},
		"two rootfs":     {ID: "x", Rootfs: root, RootfsLowerDirs: []string{root}, Args: []string{"true"}},
		"no args":        {ID: "x", Rootfs: root},
		"unknown cap":    {ID: "x", Rootfs: root, Args: []string{"true"}, CapAdd: []string{"FLY"}},
		"relative mount": {ID: "x", Rootfs: root, Args: []string{"true"}, Mounts: []Mount{{Source: "/tmp", Destination: "tmp"}}},
		"pod hostname":   {ID: "x", Pod: "p", Hostname: "h", Rootfs: root, Args: []string{"true"}},
	} {
		if _, err := m.Create(ctx, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	s := busybox(t, "true")
	if _, err := m.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, s); !errors.Is(err, ErrConflict) {
		t.Errorf("second create: %v, want ErrConflict", err)
	}
	if _, err := m.Create(ctx, busybox(t, "/no/such/binary")); err == nil {
		t.Errorf("create with a missing binary succeeded")
	}
}

// waitForLog waits until the container's log contains s.
func waitForLog(t testing.TB, m *Manager, id, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(readLog(t, m, id), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log of %s never contained %q: %q", id, s, readLog(t, m, id))
}

func TestMounts(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	rw, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(ro+"/in", []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := busybox(t, "sh", "-c", "echo from container > /rw/out; cat /ro/in; touch /ro/x 2>/dev/null && echo ro writable; echo t > /scratch/t && cat /scratch/t")
	s.Mounts = []Mount{
		{Source: rw, Destination: "/rw"},
		{Source: ro, Destination: "/ro", ReadOnly: true},
		{Type: MountTmpfs, Destination: "/scratch"},
	}
	exit, log := run(t, m, s)
	if exit.Code != 0 || log != "from host\nt\n" {
		t.Errorf("exit %+v, log %q", exit, log)
	}
	if b, err := os.ReadFile(rw + "/out"); err != nil || string(b) != "from container\n" {
		t.Errorf("rw bind: %q %v", b, err)
	}
}
