package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// execTTYOut runs a command with a terminal and returns what the terminal
// showed.
func execTTYOut(t *testing.T, m *Manager, id string, es ExecSpec) (string, int) {
	t.Helper()
	var out strings.Builder
	es.TTY = true
	es.Stdout = &out
	code, err := m.Exec(testContext(t), id, es)
	if err != nil {
		t.Fatalf("exec %v: %v", es.Args, err)
	}
	return out.String(), code
}

func TestExecTTY(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sleep", "60")
	startLong(t, m, s)

	out, code := execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"tty"}})
	if code != 0 || !regexp.MustCompile(`^/dev/pts/[0-9]+\r\n$`).MatchString(out) {
		t.Errorf("tty: code %d, output %q", code, out)
	}

	// A size waiting before the start is the initial size.
	resize := make(chan [2]uint16, 1)
	resize <- [2]uint16{100, 40}
	if out, code := execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"stty", "size"}, Resize: resize}); code != 0 || out != "40 100\r\n" {
		t.Errorf("stty size after a resize to 100x40: code %d, output %q", code, out)
	}

	if out, code := execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"sh", "-c", "exit 3"}}); code != 3 {
		t.Errorf("exit 3: code %d, output %q", code, out)
	}

	// The terminal echoes what is typed, and the shell is interactive.
	out, code = execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"sh"}, Stdin: strings.NewReader("echo hi\nexit\n")})
	if code != 0 || !strings.Contains(out, "echo hi") || !regexp.MustCompile(`(?m)^hi\r$`).MatchString(out) {
		t.Errorf("interactive sh: code %d, output %q", code, out)
	}

	// TERM defaults to xterm; the caller's wins.
	if out, _ := execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"sh", "-c", "echo $TERM"}}); out != "xterm\r\n" {
		t.Errorf("default TERM: %q", out)
	}
	if out, _ := execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"sh", "-c", "echo $TERM"}, Env: []string{"TERM=vt100"}}); out != "vt100\r\n" {
		t.Errorf("caller's TERM: %q", out)
	}

	// The terminal belongs to the user the process runs as.
	if out, code := execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"sh", "-c", "id -u; test -w $(tty) && echo writable"}, User: "app"}); code != 0 || out != "1000\r\nwritable\r\n" {
		t.Errorf("as app: code %d, output %q", code, out)
	}

	// Output written just before the exit is all there.
	for i := range 3 {
		out, code := execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"seq", "20000"}})
		var want strings.Builder
		for n := 1; n <= 20000; n++ {
			fmt.Fprintf(&want, "%d\r\n", n)
		}
		if code != 0 || out != want.String() {
			t.Errorf("seq 20000, run %d: code %d, %d bytes, want %d; ends with %q", i, code, len(out), want.Len(), out[max(0, len(out)-20):])
		}
	}

	// Stdout nil discards the output (the process is not blocked by it).
	if code, err := m.Exec(testContext(t), s.ID, ExecSpec{Args: []string{"seq", "100000"}, TTY: true}); err != nil || code != 0 {
		t.Errorf("seq without Stdout: %d %v", code, err)
	}

	// A background child holding the terminal does not hang Exec.
	start := time.Now()
	if out, code := execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"sh", "-c", "sleep 30 & echo started"}}); code != 0 || out != "started\r\n" {
		t.Errorf("background child: code %d, output %q", code, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("exec with a background child took %v", d)
	}

	// Cancellation kills the process.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	code, err := m.Exec(ctx, s.ID, ExecSpec{Args: []string{"sleep", "30"}, TTY: true, Stdout: &strings.Builder{}})
	if !errors.Is(err, context.DeadlineExceeded) || code != 137 {
		t.Errorf("cancelled exec: code %d, err %v", code, err)
	}
}

// notifyWriter collects output and signals each write.
type notifyWriter struct {
	mu    sync.Mutex
	b     strings.Builder
	wrote chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// waitFor waits until the output contains s or ctx is done.
func (w *notifyWriter) waitFor(ctx context.Context, s string) error {
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.wrote:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q: %w; output %q", s, ctx.Err(), w.String())
		}
	}
	return nil
}

func TestExecTTYResizeWhileRunning(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sleep", "60")
	startLong(t, m, s)

	ctx := testContext(t)
	out := &notifyWriter{wrote: make(chan struct{}, 1)}
	resize := make(chan [2]uint16)
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := m.Exec(ctx, s.ID, ExecSpec{
			// The loop lets the shell run its trap soon after SIGWINCH.
			Args:   []string{"sh", "-c", `trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done`},
			TTY:    true,
			Stdout: out,
			Resize: resize,
		})
		done <- result{code, err}
	}()
	if err := out.waitFor(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	select {
	case resize <- [2]uint16{120, 50}:
	case <-ctx.Done():
		t.Fatal("Exec does not receive sizes")
	}
	if err := out.waitFor(ctx, "50 120"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.code != 0 || out.String() != "ready\r\n50 120\r\n" {
		t.Errorf("code %d, err %v, output %q", r.code, r.err, out.String())
	}
	// Exec no longer receives once it has returned.
	select {
	case resize <- [2]uint16{1, 1}:
		t.Error("a size was received after Exec returned")
	default:
	}
}

// TestExecTTYLeaksNoFiles is not parallel: it counts this process's open
// files.
func TestExecTTYLeaksNoFiles(t *testing.T) {
	m := newManager(t)
	s := busybox(t, "sleep", "60")
	startLong(t, m, s)
	openFiles := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"true"}})
	// The finalizers of lost *os.Files would close them and hide the leak.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before := openFiles()
	for range 3 {
		execTTYOut(t, m, s.ID, ExecSpec{Args: []string{"sh", "-c", "echo out; exit 2"}, Stdin: strings.NewReader("x\n")})
		ctx, cancel := context.WithCancel(context.Background())
		resize := make(chan [2]uint16)
		started := &notifyWriter{wrote: make(chan struct{}, 1)}
		go func() {
			// On a timeout, cancelling anyway ends the exec too.
			_ = started.waitFor(testContext(t), "go")
			cancel()
		}()
		if _, err := m.Exec(ctx, s.ID, ExecSpec{Args: []string{"sh", "-c", "echo go; sleep 30"}, TTY: true, Stdout: started, Resize: resize}); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled exec: %v", err)
		}
	}
	if after := openFiles(); after != before {
		t.Errorf("%d open files before the execs, %d after", before, after)
	}
}
