package vmdriver

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/agent"
)

// Following a console log copies each line QEMU appends as it comes, starting from
// the tail asked for, and ends with the VM (after the last line) or with the reader.
func TestLogsFollowsTheConsoleUntilTheVMEnds(t *testing.T) {
	dir := t.TempDir()
	console, err := os.OpenFile(filepath.Join(dir, "console.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	appendLine := func(s string) {
		t.Helper()
		if _, err := console.WriteString(s + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	appendLine("old boot")
	appendLine("booting")
	tk := &task{dir: dir, done: make(chan struct{})}
	d := &Driver{tasks: map[string]*task{"vm-1": tk}}

	r, w := io.Pipe()
	ended := make(chan error, 1)
	go func() {
		err := d.Logs(context.Background(), "vm-1", agent.LogOptions{Follow: true, Tail: 1}, w)
		w.Close()
		ended <- err
	}()
	lines := bufio.NewScanner(r)
	next := func(want string) {
		t.Helper()
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("followed line %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}
	next("booting")
	appendLine("login:")
	next("login:")
	appendLine("powering off")
	close(tk.done)
	next("powering off")
	if lines.Scan() {
		t.Errorf("more after the VM ended: %q", lines.Text())
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Logs did not return after the VM ended")
	}

	// A reader that goes away ends the follow without an error.
	ctx, cancel := context.WithCancel(context.Background())
	tk.done = make(chan struct{})
	go func() { ended <- d.Logs(ctx, "vm-1", agent.LogOptions{Follow: true, Tail: 0}, io.Discard) }()
	cancel()
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("Logs after its reader went away: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Logs did not return after its context was cancelled")
	}
}

func TestSeekTail(t *testing.T) {
	long := strings.Repeat("x", 70<<10) // longer than one read chunk
	for _, tc := range []struct {
		content string
		n       int
		want    string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 0, ""},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"", 3, ""},
		{long + "\nlast\n", 1, "last\n"},
		{"first\n" + long + "\nlast\n", 2, long + "\nlast\n"},
	} {
		path := filepath.Join(t.TempDir(), "log")
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := seekTail(f, tc.n); err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(f)
		f.Close()
		if string(got) != tc.want {
			t.Errorf("tail %d of %.20q: got %.30q, want %.30q", tc.n, tc.content, got, tc.want)
		}
	}
}

func TestMACAndDirNamesAreStablePerInstance(t *testing.T) {
	a, b := "6f1c2a9e-1b2c-4d5e-8f90-123456789abc", "0d1c2a9e-1b2c-4d5e-8f90-123456789abc"
	if macFor(a) != macFor(a) || macFor(a) == macFor(b) || !strings.HasPrefix(macFor(a), "52:54:00:") || len(macFor(a)) != 17 {
		t.Errorf("MACs: %s %s", macFor(a), macFor(b))
	}
	if got := shortID(a); got != "6f1c2a9e1b2c4d5e" {
		t.Errorf("shortID = %q", got)
	}
}
