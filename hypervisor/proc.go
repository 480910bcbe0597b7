package hypervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// proc watches a QEMU process that is not our child (it daemonized), through a pidfd so
// that neither waiting nor signalling can hit a recycled PID. Where pidfd_open is missing
// (Linux < 5.3) it falls back to polling /proc.
type proc struct {
	pid  int
	file *os.File // the pidfd, registered with Go's netpoller; nil in the fallback
	stop chan struct{}
}

func openProc(pid int) (*proc, error) {
	p := &proc{pid: pid, stop: make(chan struct{})}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	switch {
	case err == nil:
		p.file = os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	case errors.Is(err, unix.ESRCH):
		return nil, ErrNotRunning
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL):
		// fall back to /proc polling
	default:
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	// A zombie has a pidfd too; it counts as gone.
	if !alive(pid) {
		p.close()
		return nil, ErrNotRunning
	}
	return p, nil
}

// wait blocks until the process has exited (nil) or close was called (errClosed).
func (p *proc) wait() error {
	if p.file != nil {
		rc, err := p.file.SyscallConn()
		if err != nil {
			return err
		}
		// A pidfd polls readable once the process has exited; the netpoller waits for
		// that without holding a thread.
		err = rc.Read(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, 0)
			return err == nil && n > 0
		})
		if err != nil {
			return errClosed
		}
		return nil
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for alive(p.pid) {
		select {
		case <-t.C:
		case <-p.stop:
			return errClosed
		}
	}
	return nil
}

func (p *proc) signal(sig syscall.Signal) error {
	var err error
	if p.file != nil {
		rc, cerr := p.file.SyscallConn()
		if cerr != nil {
			return cerr
		}
		if cerr := rc.Control(func(fd uintptr) {
			err = unix.PidfdSendSignal(int(fd), sig, nil, 0)
		}); cerr != nil {
			return cerr
		}
	} else {
		err = syscall.Kill(p.pid, sig)
	}
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

func (p *proc) close() {
	select {
	case <-p.stop:
		return
	default:
		close(p.stop)
	}
	if p.file != nil {
		p.file.Close()
	}
}

// alive reports whether pid exists and is not a zombie. A daemonized QEMU is reparented
// to PID 1, which may never reap it, so a dead QEMU can linger as a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X' && state != 'x'
}

// readPID reads QEMU's pidfile.
func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pidfile %s: bad content %q", path, b)
	}
	return pid, nil
}

// isOurQEMU reports whether pid's command line is a QEMU started by Start for dir: the
// pidfile argument is matched exactly, so a recycled PID or another VM's QEMU does not
// pass.
func isOurQEMU(pid int, dir string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if len(argv) == 0 || !strings.Contains(argv[0], "qemu") {
		return false
	}
	want := filepath.Join(dir, pidFile)
	for i := 1; i+1 < len(argv); i++ {
		if argv[i] == "-pidfile" && argv[i+1] == want {
			return true
		}
	}
	return false
}
