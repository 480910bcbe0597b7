package container

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestExecCapturesOutput(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sleep", "60")
	s.Env = []string{"FROM_SPEC=spec", "OVERRIDE=spec"}
	s.Cwd = "/tmp"
	startLong(t, m, s)

	var out, errb strings.Builder
	code, err := m.Exec(testContext(t), s.ID, ExecSpec{
		Args:   []string{"sh", "-c", `echo out $FROM_SPEC $OVERRIDE $(pwd); echo err >&2; read line; echo got $line; exit 7`},
		Env:    []string{"OVERRIDE=exec"},
		Stdin:  strings.NewReader("input\n"),
		Stdout: &out,
		Stderr: &errb,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 || out.String() != "out spec exec /tmp\ngot input\n" || errb.String() != "err\n" {
		t.Errorf("code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}

	// As another user, in the container's namespaces.
	s2out, code := execOut(t, m, s.ID, "sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '")
	if code != 0 || s2out != "0\nsleep 60 " {
		t.Errorf("exec sees %q (code %d)", s2out, code)
	}
	var uout strings.Builder
	if code, err := m.Exec(testContext(t), s.ID, ExecSpec{Args: []string{"id", "-u"}, User: "app", Stdout: &uout}); err != nil || code != 0 || uout.String() != "1000\n" {
		t.Errorf("exec as app: %d %v %q", code, err, uout.String())
	}

	// A background child holding stdout does not hang Exec.
	start := time.Now()
	if code, err := m.Exec(testContext(t), s.ID, ExecSpec{Args: []string{"sh", "-c", "sleep 30 & echo started"}, Stdout: &strings.Builder{}}); err != nil || code != 0 {
		t.Errorf("exec with a background child: %d %v", code, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("exec with a background child took %v", d)
	}

	// A Stdin that never ends does not hang Exec either.
	pr, pw := io.Pipe()
	defer pw.Close()
	if code, err := m.Exec(testContext(t), s.ID, ExecSpec{Args: []string{"true"}, Stdin: pr}); err != nil || code != 0 {
		t.Errorf("exec with an endless stdin: %d %v", code, err)
	}

	// Cancellation kills the process.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	code, err = m.Exec(ctx, s.ID, ExecSpec{Args: []string{"sleep", "30"}})
	if !errors.Is(err, context.DeadlineExceeded) || code != 137 {
		t.Errorf("cancelled exec: code %d, err %v", code, err)
	}
}

func TestExecRefusedWhenNotRunning(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "true")
	if _, err := m.Create(testContext(t), s); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(testContext(t), s.ID, ExecSpec{Args: []string{"true"}}); !errors.Is(err, ErrConflict) {
		t.Errorf("exec before start: %v", err)
	}
	if err := m.Start(testContext(t), s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Wait(testContext(t), s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(testContext(t), s.ID, ExecSpec{Args: []string{"true"}}); !errors.Is(err, ErrConflict) {
		t.Errorf("exec after exit: %v", err)
	}
	if _, err := m.Exec(testContext(t), "nope", ExecSpec{Args: []string{"true"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("exec in unknown container: %v", err)
	}
}
