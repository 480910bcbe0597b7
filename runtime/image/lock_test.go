package image

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A second Open names the process that holds the root; with LockWait it waits for
// the holder to let go (a server killed a moment ago that is still exiting).
func TestOpenLockedNamesHolderAndWaits(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(root, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("held by pid %d", os.Getpid())) {
		t.Fatalf("second Open: %v; want ErrLocked naming pid %d", err, os.Getpid())
	}
	var closing atomic.Bool
	time.AfterFunc(200*time.Millisecond, func() { closing.Store(true); s.Close() })
	s2, err := Open(root, Options{LockWait: 30 * time.Second})
	if err != nil {
		t.Fatalf("Open with LockWait: %v", err)
	}
	if !closing.Load() {
		t.Error("Open with LockWait returned before the holder let go")
	}
	s2.Close()
}
