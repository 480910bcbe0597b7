package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv, when set to a store path, turns the test binary into the child of
// TestCrashDurability: it writes until it is killed.
const crashChildEnv = "STORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild creates pods from several goroutines, so that kills land in the middle
// of group commits, and prints each name only after its Create returned.
func crashChild(path string) {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				if _, err := s.Create(context.Background(), pods, newPod("default", name)); err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(2)
				}
				mu.Lock()
				// os.Stdout is unbuffered: the name is in the pipe when Println returns.
				fmt.Println(name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrashDurability kills a writing process with SIGKILL and checks that every write
// it acknowledged is in the file.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process; skipped in -short")
	}
	path := t.TempDir() + "/cloudbox.db"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	const want = 300
	acked := make(chan []string, 1)
	go func() {
		var names []string
		sc := bufio.NewScanner(out)
		for sc.Scan() && len(names) < want {
			names = append(names, sc.Text())
		}
		acked <- names
	}()
	var names []string
	select {
	case names = <-acked:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("child acknowledged too few writes")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(names) < want {
		t.Fatalf("child acknowledged %d writes before it exited, want %d", len(names), want)
	}

	s := openAt(t, path, Options{})
	for _, name := range names {
		if _, err := s.Get(context.Background(), pods, "default", name); err != nil {
			t.Fatalf("acknowledged %s lost: %v", name, err)
		}
	}
	// The log must be whole too: a watch replays every revision after the first.
	ch, err := s.Watch(t.Context(), pods, WatchOptions{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	for rev := uint64(2); rev <= s.Revision(); rev++ {
		if ev := next(t, ch); ev.Revision != rev || ev.Type != Added {
			t.Fatalf("event %+v, want ADDED at %d", ev, rev)
		}
	}
	res, err := s.List(context.Background(), pods, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(res.Items)) != s.Revision() {
		t.Fatalf("%d objects at revision %d: a write is missing its object or its revision", len(res.Items), s.Revision())
	}
	t.Logf("%d acknowledged, %d committed before the kill", len(names), len(res.Items))
}
