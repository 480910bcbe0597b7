package hypervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// ErrNotRunning is returned by Attach when no QEMU runs for the directory, and by VM
// methods once the QEMU process has exited.
var ErrNotRunning = errors.New("hypervisor: QEMU not running")

// ErrAlreadyRunning is returned by Start when a QEMU already runs for Config.Dir.
var ErrAlreadyRunning = errors.New("hypervisor: QEMU already running")

// State is a VM's run state: QEMU's query-status "status", or StateExited.
type State string

// States callers act on; QEMU reports others too ("prelaunch", "internal-error",
// "io-error", "guest-panicked", "suspended", ...), passed through as they are.
const (
	StateRunning  State = "running"
	StatePaused   State = "paused"
	StateShutdown State = "shutdown"
	StateExited   State = "exited" // the QEMU process is gone (not a QEMU status)
)

// Exit reasons beyond the SHUTDOWN event's own ("guest-shutdown", "host-qmp-quit",
// "host-signal", "guest-panic", ...).
const (
	ExitKilled  = "killed"  // we sent SIGKILL
	ExitUnknown = "unknown" // the process vanished without a SHUTDOWN event
)

// VM is a handle on one running QEMU. Its methods are safe for concurrent use; QMP
// commands are serialised over the one connection QEMU allows. After Close, commands fail
// and Done is no longer closed by this handle.
type VM struct {
	dir  string
	pid  int
	proc *proc
	done chan struct{}

	mu     sync.Mutex
	mon    *monitor // nil or broken: dialled again by the next command
	closed bool

	subMu sync.Mutex
	subs  map[*subscription]struct{}

	shutdownReason atomic.Value // string from the SHUTDOWN event
	killed         atomic.Bool
	exitReason     string // set before done is closed
	closeOnce      sync.Once
}

type subscription struct {
	match func(qmp.Event) bool
	ch    chan qmp.Event
}

// Start launches QEMU for cfg and returns once it runs and the QMP handshake is done.
// QEMU daemonizes (-daemonize -pidfile), so it outlives the caller. If QEMU fails to
// start, the error carries its stderr. With cfg.Cgroup, QEMU runs in that cgroup from
// before its guest's first instruction; if Start fails, it removes the cgroup again.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	// QEMU unlinks an existing socket path before listening, which would orphan a live
	// VM's sockets; so look for one first.
	if pid, err := readPID(filepath.Join(cfg.Dir, pidFile)); err == nil && alive(pid) && isOurQEMU(pid, cfg.Dir) {
		return nil, fmt.Errorf("vm %s: %w as pid %d", cfg.Name, ErrAlreadyRunning, pid)
	}
	removeRuntimeFiles(cfg.Dir)

	var cg *vmCgroup
	if c := cfg.Cgroup; c != nil {
		limit := c.MemoryLimitBytes
		if limit == 0 {
			limit = cfg.MemoryLimit()
		}
		var err error
		if cg, err = createCgroup(c, limit); err != nil {
			return nil, fmt.Errorf("vm %s: cgroup %s: %w", cfg.Name, c.Path, err)
		}
	}
	v, err := start(ctx, cfg, cg)
	if err != nil {
		return nil, err
	}
	if cg != nil {
		// Moved in (by start) while its vCPUs were stopped (-S): now let the guest run.
		if _, err := v.run(ctx, "cont", nil); err != nil {
			pid := v.pid
			v.Kill()
			v.Close()
			cg.destroy(pid)
			removeRuntimeFiles(cfg.Dir)
			return nil, fmt.Errorf("vm %s: starting the vCPUs: %w", cfg.Name, err)
		}
	}
	return v, nil
}

// start runs QEMU until it has daemonized, moves it into cg (if not nil) and attaches.
// On failure nothing of the VM is left running, and cg is removed.
func start(ctx context.Context, cfg Config, cg *vmCgroup) (*VM, error) {
	fail := func(pid int, err error) (*VM, error) {
		if pid > 0 && isOurQEMU(pid, cfg.Dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if cg != nil {
			cg.destroy(pid)
		}
		removeRuntimeFiles(cfg.Dir)
		return nil, err
	}
	errPath := filepath.Join(cfg.Dir, stderrFile)
	errFile, err := os.OpenFile(errPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fail(0, err)
	}
	defer errFile.Close()
	cmd := exec.CommandContext(ctx, cfg.QEMU, cfg.args()...)
	cmd.Stdout, cmd.Stderr = errFile, errFile
	// Its own session, so that signals to the agent's process group miss the VM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Start()
	if runErr == nil {
		if cg != nil {
			// The daemon is forked from this process once it has parsed its options:
			// moving it now puts nearly all of QEMU's memory, the guest's included, in
			// the cgroup (cgroup v1 leaves pages where they were first charged). If it
			// forked first, the daemon is moved below.
			_ = cg.add(cmd.Process.Pid)
		}
		// The foreground QEMU exits once the daemon has set up the machine (or failed to).
		runErr = cmd.Wait()
	}
	pid, pidErr := readPID(filepath.Join(cfg.Dir, pidFile))
	if runErr != nil || pidErr != nil {
		msg, _ := os.ReadFile(errPath)
		if runErr == nil {
			runErr = pidErr
		}
		if pidErr != nil {
			pid = 0
		}
		return fail(pid, fmt.Errorf("vm %s: %s: %v: %s", cfg.Name, cfg.QEMU, runErr, strings.TrimSpace(string(msg))))
	}
	if cg != nil {
		if err := cg.add(pid); err != nil {
			return fail(pid, fmt.Errorf("vm %s: moving QEMU (pid %d) into its cgroup: %w", cfg.Name, pid, err))
		}
	}
	v, err := attach(ctx, cfg.Dir, pid)
	if err != nil {
		return fail(pid, fmt.Errorf("vm %s: %w", cfg.Name, err))
	}
	return v, nil
}

// Attach finds the QEMU that Start launched for dir (after the caller restarted) and
// connects to its QMP socket. If that QEMU is gone, Attach removes its stale socket and
// pidfile and returns ErrNotRunning; a PID now used by another process counts as gone.
func Attach(ctx context.Context, dir string) (*VM, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	pid, err := readPID(filepath.Join(dir, pidFile))
	if err != nil || !alive(pid) || !isOurQEMU(pid, dir) {
		removeRuntimeFiles(dir)
		return nil, fmt.Errorf("vm in %s: %w", dir, ErrNotRunning)
	}
	v, err := attach(ctx, dir, pid)
	if errors.Is(err, ErrNotRunning) {
		removeRuntimeFiles(dir)
	}
	return v, err
}

func attach(ctx context.Context, dir string, pid int) (*VM, error) {
	p, err := openProc(pid)
	if err != nil {
		return nil, err
	}
	// Checked again now that the pidfd pins the process: the PID cannot be recycled
	// between this check and any signal we send.
	if !isOurQEMU(pid, dir) {
		p.close()
		return nil, ErrNotRunning
	}
	v := &VM{dir: dir, pid: pid, proc: p, done: make(chan struct{}), subs: map[*subscription]struct{}{}}
	if _, err := v.monitor(ctx); err != nil {
		p.close()
		if !alive(pid) {
			return nil, ErrNotRunning
		}
		return nil, err
	}
	go v.watch()
	return v, nil
}

// removeRuntimeFiles deletes what a dead QEMU leaves behind; console.log stays.
func removeRuntimeFiles(dir string) {
	for _, f := range []string{qmpSocket, consoleSocket, pidFile} {
		os.Remove(filepath.Join(dir, f))
	}
}

// watch closes done when QEMU exits.
func (v *VM) watch() {
	if err := v.proc.wait(); err != nil {
		return // Close
	}
	// QEMU sends SHUTDOWN just before it exits; let the event pump reach the end of the
	// stream so that the reason is known before done closes.
	v.mu.Lock()
	m := v.mon
	v.mu.Unlock()
	if m != nil {
		select {
		case <-m.closed:
		case <-time.After(2 * time.Second):
		}
		m.disconnect()
	}
	reason, _ := v.shutdownReason.Load().(string)
	switch {
	case reason != "":
	case v.killed.Load():
		reason = ExitKilled
	default:
		reason = ExitUnknown
	}
	v.exitReason = reason
	// QEMU removes its pidfile on a clean exit, but not after SIGKILL. This happens
	// before done closes, so that a VM started in the same directory once Done is closed
	// cannot lose its files.
	if pid, err := readPID(filepath.Join(v.dir, pidFile)); err != nil || pid == v.pid {
		removeRuntimeFiles(v.dir)
	}
	close(v.done)
}

// monitor returns the QMP connection, dialling it if there is none or it broke.
func (v *VM) monitor(ctx context.Context) (*monitor, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil, errClosed
	}
	if v.exited() {
		return nil, ErrNotRunning
	}
	if v.mon != nil && !v.mon.isBroken() {
		return v.mon, nil
	}
	m, err := dialQMP(ctx, filepath.Join(v.dir, qmpSocket), v.onEvent)
	if err != nil {
		if !alive(v.pid) {
			return nil, ErrNotRunning
		}
		return nil, err
	}
	v.mon = m
	return m, nil
}

// run sends one QMP command.
func (v *VM) run(ctx context.Context, command string, args any) (json.RawMessage, error) {
	m, err := v.monitor(ctx)
	if err != nil {
		return nil, err
	}
	out, err := m.run(ctx, command, args)
	// The connection ends as QEMU exits, a moment before the pidfd says so.
	if err != nil && (v.exited() || !alive(v.pid)) {
		return nil, fmt.Errorf("qmp %s: %w", command, ErrNotRunning)
	}
	return out, err
}

func (v *VM) onEvent(e qmp.Event) {
	if e.Event == "SHUTDOWN" {
		if r, ok := e.Data["reason"].(string); ok {
			v.shutdownReason.Store(r)
		}
	}
	v.subMu.Lock()
	defer v.subMu.Unlock()
	for s := range v.subs {
		if s.match(e) {
			s.ch <- e // buffered 1 and removed at once: never blocks
			delete(v.subs, s)
		}
	}
}

// subscribe returns a channel that receives the first event matching match. Subscribe
// before sending the command that causes the event: QEMU may send the event before the
// command's reply.
func (v *VM) subscribe(match func(qmp.Event) bool) (<-chan qmp.Event, func()) {
	s := &subscription{match: match, ch: make(chan qmp.Event, 1)}
	v.subMu.Lock()
	v.subs[s] = struct{}{}
	v.subMu.Unlock()
	return s.ch, func() {
		v.subMu.Lock()
		delete(v.subs, s)
		v.subMu.Unlock()
	}
}

func eventNamed(name string) func(qmp.Event) bool {
	return func(e qmp.Event) bool { return e.Event == name }
}

func (v *VM) exited() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

// PID is the QEMU process's PID.
func (v *VM) PID() int { return v.pid }

// Dir is the VM's runtime directory.
func (v *VM) Dir() string { return v.dir }

// ConsoleLog is the path of the file that records everything the guest wrote to its
// serial console.
func (v *VM) ConsoleLog() string { return filepath.Join(v.dir, consoleLog) }

// Done is closed when the QEMU process has exited.
func (v *VM) Done() <-chan struct{} { return v.done }

// ExitReason says why QEMU exited, once Done is closed: the SHUTDOWN event's reason
// ("guest-shutdown", "host-qmp-quit", "host-signal", "guest-panic", ...), or ExitKilled,
// or ExitUnknown. Before that it is "".
func (v *VM) ExitReason() string {
	if !v.exited() {
		return ""
	}
	return v.exitReason
}

// State asks QEMU for the run state; StateExited once the process is gone.
func (v *VM) State(ctx context.Context) (State, error) {
	if v.exited() {
		return StateExited, nil
	}
	out, err := v.run(ctx, "query-status", nil)
	if errors.Is(err, ErrNotRunning) {
		return StateExited, nil
	}
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", fmt.Errorf("query-status: %w", err)
	}
	return State(st.Status), nil
}

// Powerdown presses the ACPI power button. Only a guest that handles ACPI (acpid, or
// systemd-logind) shuts down; the VM then exits with reason "guest-shutdown".
func (v *VM) Powerdown(ctx context.Context) error {
	_, err := v.run(ctx, "system_powerdown", nil)
	return err
}

// powerdownRepeat is how often Stop presses the ACPI power button while it waits.
const powerdownRepeat = 5 * time.Second

// Stop shuts the VM down and returns once the QEMU process is gone: ACPI powerdown, up to
// grace for the guest to power off, then QMP quit, then SIGKILL. Stopping a VM that has
// exited is a no-op.
func (v *VM) Stop(ctx context.Context, grace time.Duration) error {
	if v.exited() {
		return nil
	}
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-v.done:
			return true
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	// The button is pressed again every powerdownRepeat: a guest still booting (or
	// whose acpid has not opened its input device yet) misses a press, and a guest
	// already shutting down ignores another.
	for deadline := time.Now().Add(grace); grace > 0; {
		left := time.Until(deadline)
		if left <= 0 || v.Powerdown(ctx) != nil {
			break
		}
		if wait(min(left, powerdownRepeat)) {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := v.run(qctx, "quit", nil)
		cancel()
		if (err == nil || errors.Is(err, ErrNotRunning)) && wait(10*time.Second) {
			return nil
		}
	}
	if err := v.Kill(); err != nil {
		return err
	}
	// SIGKILL cannot be ignored, but ctx may have ended already: wait regardless.
	select {
	case <-v.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("vm pid %d: still running 10s after SIGKILL", v.pid)
	}
}

// Kill sends SIGKILL to QEMU without waiting; see Done.
func (v *VM) Kill() error {
	if v.exited() {
		return nil
	}
	v.killed.Store(true)
	if err := v.proc.signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill qemu pid %d: %w", v.pid, err)
	}
	return nil
}

// Reset is a hard reboot (the reset line), without the guest's cooperation.
func (v *VM) Reset(ctx context.Context) error {
	_, err := v.run(ctx, "system_reset", nil)
	return err
}

// Reboot asks the guest to reboot by sending ctrl-alt-delete, which init handles. If the
// guest has not reset within timeout, it is reset the hard way.
func (v *VM) Reboot(ctx context.Context, timeout time.Duration) error {
	reset, unsub := v.subscribe(eventNamed("RESET"))
	defer unsub()
	keys := []map[string]string{{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}}
	if _, err := v.run(ctx, "send-key", map[string]any{"keys": keys}); err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-reset:
		return nil
	case <-v.done:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return v.Reset(ctx)
	}
}

// Pause stops the vCPUs (QMP stop).
func (v *VM) Pause(ctx context.Context) error {
	_, err := v.run(ctx, "stop", nil)
	return err
}

// Resume restarts paused vCPUs (QMP cont).
func (v *VM) Resume(ctx context.Context) error {
	_, err := v.run(ctx, "cont", nil)
	return err
}

// Close drops the QMP connection and stops watching the process; QEMU keeps running and
// Attach finds it again. Close is idempotent.
func (v *VM) Close() error {
	v.closeOnce.Do(func() {
		v.mu.Lock()
		v.closed = true
		m := v.mon
		v.mon = nil
		v.mu.Unlock()
		if m != nil {
			m.disconnect()
		}
		v.proc.close()
	})
	return nil
}
