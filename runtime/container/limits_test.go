package container

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func readCgroupFile(t *testing.T, st State, controller, file string) string {
	t.Helper()
	dir, ok := st.CgroupPaths[controller]
	if !ok {
		if dir, ok = st.CgroupPaths[""]; !ok {
			t.Fatalf("no cgroup for %q in %v", controller, st.CgroupPaths)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestLimitsWrittenToCgroup(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sleep", "60")
	s.Limits = Limits{CPUMilli: 500, MemoryBytes: 48 << 20, Pids: 32}
	startLong(t, m, s)
	st, err := m.Inspect(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.cgroup2 {
		if got := readCgroupFile(t, st, "", "cpu.max"); got != "50000 100000" {
			t.Errorf("cpu.max = %q", got)
		}
		if got := readCgroupFile(t, st, "", "memory.max"); got != strconv.Itoa(48<<20) {
			t.Errorf("memory.max = %q", got)
		}
		if got := readCgroupFile(t, st, "", "pids.max"); got != "32" {
			t.Errorf("pids.max = %q", got)
		}
		return
	}
	for file, want := range map[string]string{"cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"} {
		if got := readCgroupFile(t, st, "cpu", file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if got := readCgroupFile(t, st, "memory", "memory.limit_in_bytes"); got != strconv.Itoa(48<<20) {
		t.Errorf("memory.limit_in_bytes = %q", got)
	}
	if got := readCgroupFile(t, st, "pids", "pids.max"); got != "32" {
		t.Errorf("pids.max = %q", got)
	}
	// The init really is in those cgroups.
	if got := readCgroupFile(t, st, "memory", "cgroup.procs"); got != strconv.Itoa(st.Pid) {
		t.Errorf("memory cgroup.procs = %q, want the init %d", got, st.Pid)
	}
}

func TestMemoryLimitOOMKilled(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	// tail keeps the whole newline-free input in memory.
	s := busybox(t, "sh", "-c", "head -c 200m /dev/zero | tail >/dev/null")
	s.Limits.MemoryBytes = 32 << 20
	exit, log := run(t, m, s)
	if !exit.OOMKilled || exit.Reason != ReasonOOMKilled || exit.Code != 137 {
		t.Errorf("exit = %+v (log %q), want OOMKilled with 137", exit, log)
	}
}

func TestWithinMemoryLimitNotOOMKilled(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sh", "-c", "head -c 4m /dev/zero | tail >/dev/null")
	s.Limits.MemoryBytes = 32 << 20
	exit, log := run(t, m, s)
	if exit.OOMKilled || exit.Code != 0 {
		t.Errorf("exit = %+v (log %q), want success", exit, log)
	}
}

func TestPidsLimit(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	// The shell is one task; the limit leaves room for four sleeps, and
	// busybox sh gives up at the fifth fork.
	s := busybox(t, "sh", "-c", `for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; echo all forked`)
	s.Limits.Pids = 5
	exit, log := run(t, m, s)
	if exit.Code == 0 || !strings.Contains(log, "can't fork") || strings.Contains(log, "all forked") {
		t.Fatalf("exit %+v, log %q; want a fork failure", exit, log)
	}
	st, err := m.Inspect(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.cgroup2 {
		if n := readCgroupFile(t, st, "", "pids.events"); !strings.Contains(n, "max ") || strings.Contains(n, "max 0") {
			t.Errorf("pids.events = %q, want fork failures counted", n)
		}
		return
	}
	if n := readCgroupFile(t, st, "pids", "pids.events"); n == "max 0" || !strings.HasPrefix(n, "max ") {
		t.Errorf("pids.events = %q, want fork failures counted", n)
	}
}
