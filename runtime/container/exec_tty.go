package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// execTTY runs p (an exec in c) with a new terminal. runc init allocates the
// pty inside the container, from the container's /dev/pts, makes the peer
// the process's stdio and controlling terminal, and sends us the master over
// p.ConsoleSocket.
func execTTY(ctx context.Context, c *ctr, p *libcontainer.Process, es ExecSpec) (int, error) {
	// The process may run before we hold the master, so a size that is
	// already known has to be the initial one rather than a resize.
	resize := es.Resize
pending:
	for resize != nil {
		select {
		case sz, ok := <-resize:
			if !ok {
				resize = nil
				break pending
			}
			p.ConsoleWidth, p.ConsoleHeight = sz[0], sz[1]
		default:
			break pending
		}
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("container %s: exec: console socket: %w", c.id, os.NewSyscallError("socketpair", err))
	}
	sock := os.NewFile(uintptr(fds[0]), "console-socket")
	p.ConsoleSocket = os.NewFile(uintptr(fds[1]), "console-socket-child")
	err = c.lc.Run(p)
	// runc init has its copy of the child end; without ours gone, a receive
	// would wait for ever if init died before sending.
	p.ConsoleSocket.Close()
	if err != nil {
		sock.Close()
		return -1, fmt.Errorf("container %s: exec: %w", c.id, err)
	}
	// Run returns once init is ready to exec, which is after it sent the
	// master: this does not block.
	master, err := recvPtyMaster(sock)
	sock.Close()
	if err != nil {
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		return -1, fmt.Errorf("container %s: exec: receive terminal: %w", c.id, err)
	}

	out := es.Stdout
	if out == nil {
		// Still read: a full terminal buffer would block the process.
		out = io.Discard
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		// Ends with EIO once every holder of the peer has closed it and
		// what they wrote has been read (or when master is closed).
		_, _ = io.Copy(out, master)
	}()
	if es.Stdin != nil {
		// Ends at Stdin's end, or with an error writing once master is
		// closed (a Write blocked on a full terminal is woken by Close).
		go func() { _, _ = io.Copy(master, es.Stdin) }()
	}
	stopResize := make(chan struct{})
	resized := make(chan struct{})
	if resize != nil {
		go func() {
			defer close(resized)
			for {
				select {
				case sz, ok := <-resize:
					if !ok {
						return
					}
					_ = setWinsize(master, sz[0], sz[1])
				case <-stopResize:
					return
				}
			}
		}()
	} else {
		close(resized)
	}

	exit, ctxErr := waitExec(ctx, p)
	close(stopResize)
	<-resized
	// A background child still holding the terminal would keep the output
	// open for ever; closing the master also sends it SIGHUP, as closing a
	// terminal window does.
	drainOutput(drained, func() { master.Close() })
	master.Close()
	return exit.Code, ctxErr
}

// recvPtyMaster receives the pty master runc init sends over the console
// socket. It does what runc's utils.RecvFile does (deprecated there, and
// gone in runc 1.6) and returns the master non-blocking, so that it is in
// Go's poller and Close wakes a blocked Read or Write.
func recvPtyMaster(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	raw, err := sock.SyscallConn()
	if err != nil {
		return nil, err
	}
	var rerr error
	err = raw.Control(func(fd uintptr) {
		for {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), name, oob, unix.MSG_CMSG_CLOEXEC)
			if rerr != unix.EINTR {
				return
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, os.NewSyscallError("recvmsg", err)
	}
	if oobn == 0 {
		return nil, errors.New("runc init sent no terminal")
	}
	scms, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, scm := range scms {
		if scm.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&scm)
		if err == nil {
			fds = append(fds, got...)
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("runc init sent %d file descriptors, want 1", len(fds))
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// setWinsize sets the size of the terminal whose master is f; the kernel
// sends SIGWINCH to the terminal's foreground process group.
func setWinsize(f *os.File, width, height uint16) error {
	// Through the raw conn: f.Fd() would make f blocking again.
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = raw.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: width, Row: height})
	})
	if err != nil {
		return err
	}
	return ierr
}
