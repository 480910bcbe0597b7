package container

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startWithHelperAgent creates and starts s from a separate process that
// exits right after, as an agent that is restarted would: the container is
// then not a child of the test process.
func startWithHelperAgent(t *testing.T, m *Manager, s Spec) {
	t.Helper()
	req, err := json.Marshal(helperRequest{StateRoot: m.cfg.StateRoot, CgroupParent: m.cfg.CgroupParent, Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+string(req))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper agent: %v: %s", err, out)
	}
}

func TestRecoverAfterAgentRestart(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done")
	startWithHelperAgent(t, m, s)

	// The agent that started it is gone; the container runs on, writing
	// its log directly.
	states, err := m.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || states[0].ID != s.ID || states[0].Adopted || states[0].Status != StatusRunning {
		t.Fatalf("List before Recover = %+v", states)
	}
	waitForLog(t, m, s.ID, "tick 3")

	c, err := m.Recover(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := m.Recover(s.ID); err != nil || again.Pid != c.Pid {
		t.Fatalf("second Recover: %+v %v", again, err)
	}
	st, err := m.Inspect(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusRunning || !st.Adopted || st.StartedAt.IsZero() || st.Pid != c.Pid {
		t.Fatalf("state after Recover = %+v", st)
	}
	if ppid := parentPid(t, c.Pid); ppid == os.Getpid() {
		t.Fatalf("container init %d is a child of the test process; the helper did not detach it", c.Pid)
	}
	if out, code := execOut(t, m, s.ID, "echo", "exec works"); code != 0 || out != "exec works\n" {
		t.Errorf("exec in recovered container: %d %q", code, out)
	}
	before := len(readLog(t, m, s.ID))
	for deadline := time.Now().Add(20 * time.Second); len(readLog(t, m, s.ID)) <= before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("log did not grow after recovery")
		}
	}

	// sh as PID 1 ignores TERM: Stop escalates to SIGKILL, which is the
	// one exit of a non-child we can name.
	if err := m.Stop(testContext(t), s.ID, unix.SIGTERM, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	exit, err := m.Wait(testContext(t), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if exit.Code != 137 || exit.Signal != unix.SIGKILL {
		t.Errorf("exit = %+v, want 137 after the SIGKILL", exit)
	}
	if err := m.Destroy(s.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverExitedWhileAgentAway(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sh", "-c", "echo bye; exit 4")
	startWithHelperAgent(t, m, s)
	waitForLog(t, m, s.ID, "bye")
	time.Sleep(100 * time.Millisecond)
	if _, err := m.Recover(s.ID); err != nil {
		t.Fatal(err)
	}
	exit, err := m.Wait(testContext(t), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The code went to whoever reaped the orphan (unless the test runs
	// under a subreaper that made the orphan our child).
	if (exit.Reason != ReasonUnknown || exit.Code != unknownExitCode) && exit.Code != 4 {
		t.Errorf("exit = %+v, want Unknown", exit)
	}
	if st, _ := m.Inspect(s.ID); st.Status != StatusStopped {
		t.Errorf("status %s", st.Status)
	}
}

func TestRecoverUnknown(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	if _, err := m.Recover("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Recover of an unknown container: %v", err)
	}
}

// TestWaitPidfd checks the exit decoding of waitid(P_PIDFD) on a child.
func TestWaitPidfd(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
		sig    unix.Signal
	}{
		{"exit 7", 7, 0},
		{"kill -TERM $$", 128 + 15, unix.SIGTERM},
	} {
		cmd := exec.Command("/bin/sh", "-c", tc.script)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10000); err != nil {
			t.Fatal(err)
		}
		e := waitPidfd(fd)
		unix.Close(fd)
		if e.Code != tc.code || e.Signal != tc.sig {
			t.Errorf("%q: %+v, want code %d signal %v", tc.script, e, tc.code, tc.sig)
		}
	}
}

func parentPid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}
