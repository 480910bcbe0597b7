package container

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// ExecSpec is a process to run in a running container (kubectl exec, exec
// probes). It gets the container's namespaces, cgroup, capabilities and
// rlimits.
type ExecSpec struct {
	// Args is the command line; required.
	Args []string
	// Env is added to the container's environment, overriding equal keys.
	Env []string
	// Cwd is the working directory; "" means the container's.
	Cwd string
	// User as in Spec.User; "" means the container's user.
	User string
	// Stdin feeds the process; nil means /dev/null (with TTY: nothing is
	// typed). Exec does not wait for a pending Read of Stdin: the goroutine
	// copying Stdin ends when a Read returns after the process has exited.
	Stdin io.Reader
	// Stdout and Stderr receive the output; nil discards it. With TTY,
	// Stdout receives the terminal's output and Stderr is unused.
	Stdout, Stderr io.Writer
	// TTY gives the process a new terminal as its stdin, stdout and stderr
	// and makes it the session leader with that controlling terminal. The
	// terminal has its default modes (it echoes, and turns "\n" into
	// "\r\n"), as the caller's own terminal is expected to be raw. The end
	// of Stdin is not passed on: a terminal's input has no end; send ^D
	// (EOT) instead. TERM is xterm unless the container's or Env sets it.
	TTY bool
	// Resize delivers terminal sizes as (width, height) in characters; only
	// used with TTY; may be nil. A size already waiting when Exec is called
	// is the terminal's initial size; each later one is applied as it
	// arrives (the process gets SIGWINCH). Exec stops receiving when the
	// process exits; closing Resize is allowed but not needed.
	Resize <-chan [2]uint16
}

// outputDrain is how long Exec keeps copying output after the process
// exited: a background child that inherited stdout would otherwise keep
// Exec waiting for ever.
const outputDrain = time.Second

// Exec runs a process in a running container and returns its exit code
// (128+signal if a signal killed it). When ctx is done the process is
// killed and ctx's error is returned with the code. The exec'd process is a
// child of this process: if the agent exits meanwhile, it keeps running but
// its output is lost.
func (m *Manager) Exec(ctx context.Context, id string, es ExecSpec) (int, error) {
	if len(es.Args) == 0 || es.Args[0] == "" {
		return -1, fmt.Errorf("container %s: exec: no command: %w", id, ErrInvalid)
	}
	c, err := m.get(id)
	if err != nil {
		return -1, err
	}
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	if c.exited() || rec.StartedAt.IsZero() {
		return -1, fmt.Errorf("container %s: exec: not running: %w", id, ErrConflict)
	}
	userSpec := es.User
	if userSpec == "" {
		userSpec = rec.Spec.User
	}
	u, err := resolveUser(rec.Rootfs, userSpec)
	if err != nil {
		return -1, fmt.Errorf("container %s: exec: %w", id, err)
	}
	cwd := es.Cwd
	if cwd == "" {
		cwd = rec.Spec.Cwd
	}
	if cwd == "" {
		cwd = "/"
	}
	env := mergeEnv(rec.Env, es.Env)
	if es.TTY && !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "TERM=") }) {
		env = append(env, "TERM=xterm")
	}

	p := &libcontainer.Process{
		Args:             es.Args,
		Env:              env,
		UID:              u.UID,
		GID:              u.GID,
		AdditionalGroups: u.Groups,
		Cwd:              cwd,
	}
	if es.TTY {
		return execTTY(ctx, c, p, es)
	}
	// Our own pipes rather than letting os/exec make them: its Wait would
	// wait for every process holding the write end, background children
	// of the exec'd command included.
	var (
		copies sync.WaitGroup
		closeR []*os.File
	)
	output := func(w io.Writer) (*os.File, error) {
		if w == nil {
			return nil, nil
		}
		r, wr, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		closeR = append(closeR, r)
		copies.Add(1)
		go func() {
			defer copies.Done()
			_, _ = io.Copy(w, r)
		}()
		return wr, nil
	}
	stdout, err := output(es.Stdout)
	if err != nil {
		return -1, err
	}
	stderr, err := output(es.Stderr)
	if err != nil {
		stdout.Close()
		return -1, err
	}
	if stdout != nil {
		p.Stdout = stdout
	}
	if stderr != nil {
		p.Stderr = stderr
	}
	defer func() {
		for _, r := range closeR {
			r.Close()
		}
	}()
	// Stdin through our pipe too: os/exec's Wait would wait for its
	// stdin copier, which blocks as long as Stdin has no data.
	var stdinR *os.File
	if es.Stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return -1, err
		}
		stdinR = r
		p.Stdin = r
		go func() {
			_, _ = io.Copy(w, es.Stdin)
			w.Close()
		}()
		defer w.Close() // unblocks the copier's writes once the process is gone
	}

	err = c.lc.Run(p)
	// The child has its copies; ours must go or the readers never see EOF
	// (and the stdin copier EPIPE).
	if stdinR != nil {
		stdinR.Close()
	}
	if stdout != nil {
		stdout.Close()
	}
	if stderr != nil {
		stderr.Close()
	}
	if err != nil {
		copies.Wait()
		return -1, fmt.Errorf("container %s: exec: %w", id, err)
	}

	exit, ctxErr := waitExec(ctx, p)
	drained := make(chan struct{})
	go func() { copies.Wait(); close(drained) }()
	drainOutput(drained, func() {
		for _, r := range closeR {
			r.Close()
		}
	})
	return exit.Code, ctxErr
}

// waitExec waits for an exec'd process, killing it when ctx is done (and
// then returning ctx's error with its exit status).
func waitExec(ctx context.Context, p *libcontainer.Process) (ExitStatus, error) {
	waited := make(chan ExitStatus, 1)
	go func() {
		ps, _ := p.Wait()
		waited <- exitFromProcessState(ps)
	}()
	select {
	case exit := <-waited:
		return exit, nil
	case <-ctx.Done():
		_ = p.Signal(unix.SIGKILL)
		return <-waited, ctx.Err()
	}
}

// drainOutput waits, once the process has exited, for the output copiers
// to close drained; after outputDrain it calls abort, which must make them
// finish, and waits again.
func drainOutput(drained <-chan struct{}, abort func()) {
	t := time.NewTimer(outputDrain)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		abort()
		<-drained
	}
}

// mergeEnv appends extra to base, replacing entries of base with the same
// key.
func mergeEnv(base, extra []string) []string {
	out := slices.Clone(base)
	for _, e := range extra {
		k, _, _ := strings.Cut(e, "=")
		out = slices.DeleteFunc(out, func(b string) bool { return strings.HasPrefix(b, k+"=") })
		out = append(out, e)
	}
	return out
}
