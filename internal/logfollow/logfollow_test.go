package logfollow

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const testTimeout = 10 * time.Second

// sink collects what a follower copies and says when it grows.
type sink struct {
	mu    sync.Mutex
	b     strings.Builder
	grown chan struct{}
}

func newSink() *sink { return &sink{grown: make(chan struct{}, 1)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	select {
	case s.grown <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the sink holds want.
func (s *sink) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(testTimeout)
	for s.String() != want {
		select {
		case <-s.grown:
		case <-deadline:
			t.Fatalf("copied %q, want %q", s.String(), want)
		}
	}
}

// logFile creates a file and returns it opened for reading and for appending.
func logFile(t *testing.T) (r, w *os.File) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "log")
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	r, err = os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, w
}

func write(t *testing.T, f *os.File, s string) {
	t.Helper()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestFollowCopiesEachWriteAndTheRestWhenDone(t *testing.T) {
	for _, useInotify := range []bool{true, false} {
		name := map[bool]string{true: "inotify", false: "poll"}[useInotify]
		t.Run(name, func(t *testing.T) {
			r, w := logFile(t)
			write(t, w, "before\n")
			out := newSink()
			done := make(chan struct{})
			ended := make(chan error, 1)
			go func() {
				wk := newWaker(r, useInotify)
				defer wk.close()
				ended <- follow(context.Background(), wk.c, done, func() error { _, err := io.Copy(out, r); return err })
			}()
			out.waitFor(t, "before\n")
			write(t, w, "one\n")
			out.waitFor(t, "before\none\n")
			write(t, w, "two\n")
			out.waitFor(t, "before\none\ntwo\n")
			// Written just before the writer ends: copied by the last call.
			write(t, w, "last\n")
			close(done)
			select {
			case err := <-ended:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(testTimeout):
				t.Fatal("follow did not return once done was closed")
			}
			if got := out.String(); got != "before\none\ntwo\nlast\n" {
				t.Errorf("copied %q", got)
			}
		})
	}
}

func TestInotifyWakesOnAWriteAndNotBefore(t *testing.T) {
	r, w := logFile(t)
	wk := newWaker(r, true)
	defer wk.close()
	if wk.ino == nil {
		t.Fatal("inotify could not watch a regular file; the waker polls")
	}
	select {
	case <-wk.c:
		t.Fatal("woken before anything was written")
	default:
	}
	write(t, w, "x")
	// The inotify waker has no timer: only the write can wake it.
	select {
	case <-wk.c:
	case <-time.After(testTimeout):
		t.Fatal("a write did not wake the follower")
	}
}

func TestFileEndsWithTheContextOrTheFirstCopyError(t *testing.T) {
	r, w := logFile(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := newSink()
	ended := make(chan error, 1)
	go func() {
		ended <- File(ctx, r, nil, func() error { _, err := io.Copy(out, r); return err })
	}()
	write(t, w, "a\n")
	out.waitFor(t, "a\n")
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("File after cancel: %v, want %v", err, context.Canceled)
		}
	case <-time.After(testTimeout):
		t.Fatal("File did not return after its context was cancelled")
	}

	broken := errors.New("reader went away")
	calls := 0
	err := File(context.Background(), r, nil, func() error {
		if calls++; calls == 2 {
			return broken
		}
		write(t, w, "more\n") // wakes the follower for the second call
		return nil
	})
	if !errors.Is(err, broken) || calls != 2 {
		t.Errorf("File with a failing copy: %v after %d calls, want %v after 2", err, calls, broken)
	}
}
