package container

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestLogsFollow(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sh", "-c", "for i in $(seq 1 20); do echo line $i; sleep 0.05; done")
	ctx := testContext(t)
	if _, err := m.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() {
		var b strings.Builder
		if err := m.Logs(ctx, s.ID, true, &b); err != nil {
			t.Error(err)
		}
		done <- b.String()
	}()
	if err := m.Start(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	select {
	case got := <-done:
		if got != want.String() {
			t.Errorf("followed %q", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Logs(follow) did not return after the container exited")
	}

	// Follow ends with ctx too.
	long := busybox(t, "sleep", "60")
	startLong(t, m, long)
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := m.Logs(cctx, long.ID, true, &strings.Builder{}); err != context.DeadlineExceeded {
		t.Errorf("Logs after ctx: %v", err)
	}
}

func TestLogRotation(t *testing.T) {
	t.Parallel()
	const maxBytes = 16 << 10
	m := newManager(t, func(c *Config) {
		c.LogMaxBytes = maxBytes
		c.LogMaxFiles = 3
		c.LogCheckInterval = 20 * time.Millisecond
	})
	// About 20 bytes per line, 6000 lines: ~120 KB through a 16 KB log.
	s := busybox(t, "sh", "-c", "i=0; while [ $i -lt 6000 ]; do echo line-$i-xxxxxxxxx; i=$((i+1)); [ $((i % 200)) = 0 ] && sleep 0.02; done")
	exit, log := run(t, m, s)
	if exit.Code != 0 {
		t.Fatalf("exit %+v", exit)
	}
	st, err := os.Stat(m.logPath(s.ID) + ".1")
	if err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	if _, err := os.Stat(m.logPath(s.ID) + ".4"); err == nil {
		t.Errorf("more than LogMaxFiles rotated files kept")
	}
	if st.Size() > 4*maxBytes {
		t.Errorf("rotated file of %d bytes", st.Size())
	}
	// What is kept is one contiguous run of lines ending with the last
	// one: rotation lost nothing in between, where the filesystem can
	// collapse the head of the live file (ext4, xfs) instead of
	// truncating it (then only the order is checked).
	collapse := canCollapse(t, m.cfg.LogRoot)
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	if lines[len(lines)-1] != "line-5999-xxxxxxxxx" {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	// The first kept line may be cut at a block boundary.
	first := -1
	for i, l := range lines {
		if !strings.HasPrefix(l, "line-") || !strings.HasSuffix(l, "-xxxxxxxxx") {
			if i == 0 {
				continue
			}
			t.Fatalf("line %d mangled: %q", i, l)
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(l, "line-"), "-xxxxxxxxx"))
		if err != nil {
			t.Fatalf("line %q", l)
		}
		if first < 0 {
			first = n - i
		}
		if collapse && n != first+i {
			t.Fatalf("line %d is %q, want line-%d: lines lost in rotation", i, l, first+i)
		}
		if n < first+i {
			t.Fatalf("line %d is %q: out of order", i, l)
		}
	}
	if first <= 0 {
		t.Errorf("nothing was rotated away (first kept line %d)", first)
	}
}

// canCollapse reports whether dir's filesystem supports
// FALLOC_FL_COLLAPSE_RANGE.
func canCollapse(t *testing.T, dir string) bool {
	f, err := os.CreateTemp(dir, "collapse")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 3*65536)); err != nil {
		t.Fatal(err)
	}
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, 65536) == nil
}
