// Package logfollow copies what is appended to a file while it is written, as
// `logs -f` needs: woken by inotify as soon as the file is written, or by polling
// where inotify cannot watch it.
package logfollow

import (
	"context"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// PollInterval is how often a file is read again where inotify cannot watch it.
const PollInterval = 200 * time.Millisecond

// File calls copyNew at once and again each time f is written, until done is closed
// or ctx is done. copyNew copies what is new in f since its last call; File never
// reads f itself, so copyNew may keep its own position (as a log that is rotated
// needs). When done is closed, File calls copyNew a last time, for what was written
// before the writer ended, and returns its error; when ctx is done, it returns
// ctx.Err(); the first error of copyNew ends it. A nil done never closes.
func File(ctx context.Context, f *os.File, done <-chan struct{}, copyNew func() error) error {
	// Watch before the first copy, so a write between the two is not missed.
	w := newWaker(f, true)
	defer w.close()
	return follow(ctx, w.c, done, copyNew)
}

func follow(ctx context.Context, wake <-chan struct{}, done <-chan struct{}, copyNew func() error) error {
	if err := copyNew(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return copyNew()
		case <-wake:
			if err := copyNew(); err != nil {
				return err
			}
		}
	}
}

// waker signals on c when its file may have grown. Signals coalesce: c holds one
// at most, and one copy reads everything written before it.
type waker struct {
	c    chan struct{}
	stop chan struct{}
	ino  *os.File // the inotify instance; nil when polling
	wg   sync.WaitGroup
}

// newWaker watches f with inotify if useInotify and the kernel lets it, and polls
// every PollInterval otherwise, or from the moment reading inotify's events fails.
func newWaker(f *os.File, useInotify bool) *waker {
	w := &waker{c: make(chan struct{}, 1), stop: make(chan struct{})}
	if useInotify {
		w.ino, _ = watchWrites(f)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if w.ino != nil {
			w.readEvents()
		}
		w.poll()
	}()
	return w
}

// watchWrites returns an inotify instance that has an event for every write to f.
// It watches the open file through /proc rather than f's name, so a file renamed
// or removed while it is read is still the one watched.
func watchWrites(f *os.File) (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Non-blocking, so the runtime's poller serves it and close ends a pending read.
	return os.NewFile(uintptr(fd), "inotify"), nil
}

// readEvents signals once per batch of events until the instance is closed or
// fails.
func (w *waker) readEvents() {
	buf := make([]byte, 4096)
	for {
		if _, err := w.ino.Read(buf); err != nil {
			return
		}
		w.signal()
	}
}

func (w *waker) poll() {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.signal()
		}
	}
}

func (w *waker) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// close stops the waker and waits for its goroutine.
func (w *waker) close() {
	close(w.stop)
	if w.ino != nil {
		_ = w.ino.Close()
	}
	w.wg.Wait()
}
