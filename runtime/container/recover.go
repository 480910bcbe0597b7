package container

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/system"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Recover adopts a container left in StateRoot by a previous Manager (an
// agent that restarted): it loads libcontainer's state, and if the init
// still runs, watches it through a pidfd so that Wait, Stop, Exec and
// Destroy work as for a container this Manager created. Recovering a
// container already known returns it.
//
// The exit code of a recovered container is usually lost: only the parent
// of a process can read it (wait4), and the parent was the previous agent;
// since that exited, the init has been re-parented to the host's init (or
// the nearest subreaper), which reaps it. So:
//   - an exit recorded by the previous agent (it saw the exit) is kept;
//   - an exit while no agent ran, or after Recover, is reported with
//     Reason "Unknown" and Code 255 — except after Stop escalated to SIGKILL,
//     which cannot be caught, reported as 137;
//   - OOMKilled is still known: the cgroup keeps counting OOM kills.
//
// A shim per container would keep the code but costs a process and memory
// per container, which cloudbox avoids. The kernel's proc connector
// (PROC_EVENT_EXIT carries any process's exit code, root and the initial
// network namespace only) would be the way to close the gap without a shim.
func (m *Manager) Recover(id string) (*Container, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	if c, err := m.get(id); err == nil {
		return c.info(), nil
	}
	if err := m.reserve(id); err != nil {
		if c, err := m.get(id); err == nil {
			return c.info(), nil
		}
		return nil, err
	}
	defer m.unreserve(id)

	rec, err := loadRecord(m.containerDir(id))
	if err != nil {
		return nil, err
	}
	lc, err := libcontainer.Load(m.lcRoot, id)
	if err != nil {
		if errors.Is(err, libcontainer.ErrNotExist) {
			err = fmt.Errorf("%w: %w", err, ErrNotFound)
		}
		return nil, fmt.Errorf("container %s: load: %w", id, err)
	}
	c := &ctr{id: id, rec: *rec, lc: lc, done: make(chan struct{}), stopWatch: make(chan struct{})}
	m.mu.Lock()
	select {
	case <-m.stop:
		m.mu.Unlock()
		return nil, fmt.Errorf("container manager closed: %w", ErrConflict)
	default:
	}
	m.ctrs[id] = c
	m.mu.Unlock()

	switch {
	case rec.Exit != nil:
		close(c.done)
	default:
		pidfd, err := openPidfd(rec.Pid, rec.PidStartTime)
		if err != nil {
			// Gone while no agent watched it.
			m.finishExit(c, ExitStatus{Code: unknownExitCode, Reason: ReasonUnknown})
			break
		}
		go m.watchPidfd(c, pidfd)
	}
	m.log.Info("container recovered", zap.String("container", id), zap.Int("pid", rec.Pid), zap.Bool("exited", c.exited()))
	return c.info(), nil
}

// openPidfd opens a pidfd for pid and checks, after opening, that it is
// still the process started at startTime (clock ticks since boot, from
// /proc/PID/stat): a PID may have been reused since the state was saved,
// but a pidfd always refers to the process it was opened for.
func openPidfd(pid int, startTime uint64) (*os.File, error) {
	if pid <= 0 {
		return nil, os.ErrNotExist
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	st, err := system.Stat(pid)
	if err != nil || st.StartTime != startTime || st.State == system.Zombie || st.State == system.Dead {
		unix.Close(fd)
		return nil, os.ErrNotExist
	}
	// A non-blocking pidfd goes into Go's netpoller: waiting for it costs
	// no thread.
	return os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid)), nil
}

// watchPidfd waits until the init exits (its pidfd turns readable) and
// records how. The wait sits in Go's netpoller: no OS thread per container
// (os.Process.Wait would block one in waitid for the container's whole
// life). A child is then reaped with proc.Wait, which returns at once; a
// recovered container is reaped by waitid on the pidfd when it happens to
// be our child, else its code is unknown. For a recovered container, Close
// (stopWatch) ends the wait without recording anything.
func (m *Manager) watchPidfd(c *ctr, pidfd *os.File) {
	defer pidfd.Close()
	finished := make(chan struct{})
	defer close(finished)
	if c.stopWatch != nil {
		go func() {
			select {
			case <-c.stopWatch:
				_ = pidfd.SetReadDeadline(time.Now())
			case <-finished:
			}
		}()
	}
	rc, err := pidfd.SyscallConn()
	if err == nil {
		err = rc.Read(func(fd uintptr) bool {
			n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			return n > 0
		})
	}
	if c.proc != nil {
		// Our child: even if polling failed, Wait is right (it blocks).
		ps, _ := c.proc.Wait()
		m.finishExit(c, exitFromProcessState(ps))
		return
	}
	if err != nil {
		return // Close: leave the container to the next Manager
	}
	e := ExitStatus{Code: unknownExitCode, Reason: ReasonUnknown}
	_ = rc.Control(func(fd uintptr) { e = waitPidfd(int(fd)) })
	c.mu.Lock()
	if e.Reason == ReasonUnknown && c.killed {
		e = ExitStatus{Code: 128 + int(unix.SIGKILL), Signal: unix.SIGKILL}
	}
	c.mu.Unlock()
	m.finishExit(c, e)
}

// waitPidfd reaps the process if it is our child (it is when the same
// process created the container and recovered it, as in tests); for any
// other process waitid fails with ECHILD and the code is unknown.
func waitPidfd(fd int) ExitStatus {
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil); err != nil || info.Signo != int32(unix.SIGCHLD) {
		return ExitStatus{Code: unknownExitCode, Reason: ReasonUnknown}
	}
	code, status := siginfoChild(&info)
	const cldExited, cldKilled, cldDumped = 1, 2, 3 // <asm-generic/siginfo.h>
	switch code {
	case cldExited:
		return ExitStatus{Code: int(status)}
	case cldKilled, cldDumped:
		return ExitStatus{Code: 128 + int(status), Signal: syscall.Signal(status)}
	}
	return ExitStatus{Code: unknownExitCode, Reason: ReasonUnknown}
}

// siginfoChild reads si_code and si_status of a SIGCHLD siginfo. x/sys
// leaves the union opaque; it starts after three int32s, aligned to a
// pointer, and holds si_pid, si_uid, si_status.
func siginfoChild(info *unix.Siginfo) (code int32, status int32) {
	const ptr = unsafe.Sizeof(uintptr(0))
	union := (12 + ptr - 1) &^ (ptr - 1)
	base := unsafe.Pointer(info)
	return info.Code, *(*int32)(unsafe.Add(base, union+8))
}
