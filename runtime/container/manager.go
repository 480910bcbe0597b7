package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/cloudbox/cloudbox/internal/keylock"
)

// Errors returned (wrapped) by the Manager.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict") // exists already, or in the wrong state
	ErrInvalid  = errors.New("invalid")
)

// Config configures a Manager. StateRoot is required; the other fields
// have defaults.
type Config struct {
	// StateRoot holds libcontainer's state, the per-container overlay
	// upper/work directories and the pods' namespace files, e.g.
	// DATA_DIR/containers. It should not lie inside the directory of the
	// running binary (see Init). Containers there survive the process: a
	// new Manager on the same StateRoot adopts them with Recover.
	StateRoot string
	// CgroupParent is the absolute cgroup path containers go under; if
	// empty, "/cloudbox".
	CgroupParent string
	// LogRoot holds the containers' log files; if empty, StateRoot/logs.
	LogRoot string
	// LogMaxBytes is the size past which a log file is rotated; if 0,
	// 10 MiB; negative disables rotation.
	LogMaxBytes int64
	// LogMaxFiles is how many rotated files are kept besides the current
	// one; if 0, 4 (Kubernetes' containerLogMaxFiles=5 counts the current).
	LogMaxFiles int
	// LogCheckInterval is how often log sizes are checked; if 0, 10 s.
	LogCheckInterval time.Duration
	// Logger receives the Manager's own logs; if nil, nothing is logged.
	Logger *zap.Logger
}

// Manager runs containers with libcontainer inside this process: there is
// no shim or monitor process per container. Each container's stdout and
// stderr are a file the container writes itself, and nothing the container
// needs goes through this process, so containers keep running when it exits
// and a new Manager adopts them (Recover).
//
// A Manager is safe for concurrent use. Operations on one container are
// serialized; different containers proceed in parallel.
type Manager struct {
	cfg            Config
	log            *zap.Logger
	lcRoot         string // libcontainer's state root
	ctrRoot        string // our per-container directories
	podRoot        string // pods: namespace files, shared files, shm
	nofile         uint64
	cgroup2        bool
	swapAccounting bool

	mu       sync.Mutex
	ctrs     map[string]*ctr
	reserved map[string]bool // IDs being created or recovered
	// pods serialises CreatePod and RemovePod of one pod; other pods' go on.
	pods keylock.Map

	stop chan struct{}
	wg   sync.WaitGroup
}

// ctr is the Manager's view of one container.
type ctr struct {
	id string
	// op serializes lifecycle operations (Start, Stop, Destroy, Exec setup).
	op sync.Mutex
	// mu guards rec and killed.
	mu  sync.Mutex
	rec record
	// killed is set when Stop escalated to SIGKILL.
	killed bool
	lc     *libcontainer.Container
	// proc is the init process when this process started it (we are its
	// parent and can wait4 it); nil after Recover.
	proc *libcontainer.Process
	// done is closed once the init has exited and rec.Exit is set.
	done chan struct{}
	// stopWatch stops the exit watcher of a recovered container (Close);
	// nil for children, which are reaped even after Close.
	stopWatch chan struct{}
	// logBase counts bytes rotated out of the head of the current log
	// file, so that a follower can keep its place (see rotateLog).
	logBase atomic.Int64
}

// Container describes a created container.
type Container struct {
	ID  string
	Pod string
	// Pid is the host PID of the container's init process.
	Pid int
	// Rootfs is the host path of the container's root filesystem.
	Rootfs string
	// LogPath is the file the container's stdout and stderr go to.
	LogPath string
	// CgroupPath is the container's absolute cgroup path.
	CgroupPath string
}

// Status is a container's lifecycle state.
type Status string

// Container statuses.
const (
	StatusCreated Status = "created" // init is waiting for Start
	StatusRunning Status = "running"
	StatusPaused  Status = "paused"
	StatusStopped Status = "stopped" // init has exited
)

// State is a snapshot of a container.
type State struct {
	Container
	Status    Status
	CreatedAt time.Time
	// StartedAt is zero until Start.
	StartedAt time.Time
	// Exit is nil until the init has exited.
	Exit *ExitStatus
	// CgroupPaths maps each cgroup controller ("" for the v2 or hybrid
	// unified hierarchy) to the container's directory in it.
	CgroupPaths map[string]string
	// NetNSPath is the container's network namespace (the pod's file, or
	// /proc/PID/ns/net); "" for host network or a stopped container.
	NetNSPath string
	// Adopted is false for a container found in StateRoot that this
	// Manager has not Recovered (List reports those too).
	Adopted bool
}

// New prepares StateRoot and LogRoot and starts log rotation. Call Close
// when done; containers keep running.
func New(cfg Config) (*Manager, error) {
	if cfg.StateRoot == "" {
		return nil, fmt.Errorf("container manager: StateRoot is required: %w", ErrInvalid)
	}
	root, err := filepath.Abs(cfg.StateRoot)
	if err != nil {
		return nil, err
	}
	cfg.StateRoot = root
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/cloudbox"
	}
	if !filepath.IsAbs(cfg.CgroupParent) || filepath.Clean(cfg.CgroupParent) == "/" {
		return nil, fmt.Errorf("container manager: CgroupParent %q must be an absolute path below /: %w", cfg.CgroupParent, ErrInvalid)
	}
	cfg.CgroupParent = filepath.Clean(cfg.CgroupParent)
	if cfg.LogRoot == "" {
		cfg.LogRoot = filepath.Join(root, "logs")
	}
	if cfg.LogMaxBytes == 0 {
		cfg.LogMaxBytes = 10 << 20
	}
	if cfg.LogMaxFiles <= 0 {
		cfg.LogMaxFiles = 4
	}
	if cfg.LogCheckInterval <= 0 {
		cfg.LogCheckInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	m := &Manager{
		cfg:      cfg,
		log:      cfg.Logger,
		lcRoot:   filepath.Join(root, "libcontainer"),
		ctrRoot:  filepath.Join(root, "containers"),
		podRoot:  filepath.Join(root, "pods"),
		nofile:   hostNofileLimit(),
		cgroup2:  cgroups.IsCgroup2UnifiedMode(),
		ctrs:     map[string]*ctr{},
		reserved: map[string]bool{},
		stop:     make(chan struct{}),
	}
	m.swapAccounting = detectSwapAccounting(m.cgroup2)
	if exe, bad := exeSealOverlaps(m.lcRoot); bad {
		// Still safe, only slower: warn rather than refuse, so that a
		// developer running ./cloudbox with ./data still gets containers.
		m.log.Warn("container state root is inside the binary's directory: libcontainer will copy the binary into memory on every container start (+5-6 ms and the binary's size in memory per start); move the data dir elsewhere",
			zap.String("stateRoot", root), zap.String("binary", exe))
	}
	for _, d := range []string{m.lcRoot, m.ctrRoot, m.podRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.LogRoot, 0o755); err != nil {
		return nil, err
	}
	if cfg.LogMaxBytes > 0 {
		m.wg.Add(1)
		go m.rotateLoop()
	}
	return m, nil
}

// Close stops log rotation and the exit watchers of recovered containers
// (containers this Manager started are still reaped). It neither stops nor
// destroys containers: they are meant to outlive the agent. The Manager
// must not be used after Close.
func (m *Manager) Close() error {
	m.mu.Lock()
	select {
	case <-m.stop:
		m.mu.Unlock()
		return nil
	default:
	}
	close(m.stop)
	for _, c := range m.ctrs {
		if c.stopWatch != nil {
			close(c.stopWatch)
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

func (m *Manager) containerDir(id string) string { return filepath.Join(m.ctrRoot, id) }

// get returns a container this Manager created or recovered.
func (m *Manager) get(id string) (*ctr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.ctrs[id]
	if !ok {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	return c, nil
}

// reserve marks id as being set up so that two Creates (or a Create and a
// Recover) of one ID cannot race.
func (m *Manager) reserve(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ctrs[id]; ok || m.reserved[id] {
		return fmt.Errorf("container %s: %w", id, ErrConflict)
	}
	m.reserved[id] = true
	return nil
}

func (m *Manager) unreserve(id string) {
	m.mu.Lock()
	delete(m.reserved, id)
	m.mu.Unlock()
}

// Create sets the container up and leaves its init process waiting for
// Start: the root filesystem is mounted, namespaces and cgroup exist, the
// process is resolved. This is the moment to wire networking into a
// container that has a network namespace of its own (State.NetNSPath).
func (m *Manager) Create(ctx context.Context, s Spec) (_ *Container, retErr error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validateSpec(&s); err != nil {
		return nil, err
	}
	s.Args = slices.Clone(s.Args)
	if err := m.reserve(s.ID); err != nil {
		return nil, err
	}
	defer m.unreserve(s.ID)

	dir := m.containerDir(s.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %s exists in %s (Recover or Destroy it): %w", s.ID, m.cfg.StateRoot, ErrConflict)
		}
		return nil, err
	}
	rec := record{
		Spec:       s,
		LogPath:    m.logPath(s.ID),
		CgroupPath: m.cgroupPath(&s),
		CreatedAt:  time.Now(),
	}
	rec.Spec.Files = nil
	var lc *libcontainer.Container
	defer func() {
		if retErr == nil {
			return
		}
		if lc != nil {
			if err := lc.Destroy(); err != nil {
				m.log.Warn("destroy after failed create", zap.String("container", s.ID), zap.Error(err))
			}
		}
		m.cleanupDirs(s.ID, &rec)
	}()

	// Root filesystem.
	if s.Rootfs != "" {
		rec.Rootfs = filepath.Clean(s.Rootfs)
	} else {
		rec.Rootfs = filepath.Join(dir, "rootfs")
		upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
		for _, d := range []string{rec.Rootfs, upper, work} {
			if err := os.Mkdir(d, 0o755); err != nil {
				return nil, err
			}
		}
		if err := mountOverlay(s.RootfsLowerDirs, upper, work, rec.Rootfs); err != nil {
			return nil, fmt.Errorf("container %s: %w", s.ID, err)
		}
		rec.Overlay = true
	}

	// Namespaces and the files shared with the pod.
	var ns nsConfig
	files := map[string]string{}
	if s.Pod != "" {
		pod, err := m.GetPod(s.Pod)
		if err != nil {
			return nil, err
		}
		ns = pod.nsConfig()
		for dst, src := range pod.files {
			files[dst] = src
		}
	} else {
		ns.hostNetwork = s.HostNetwork
	}
	own, err := writeFiles(filepath.Join(dir, "files"), s.Files)
	if err != nil {
		return nil, fmt.Errorf("container %s: files: %w", s.ID, err)
	}
	for dst, src := range own {
		files[dst] = src
	}

	u, err := resolveUser(rec.Rootfs, s.User)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", s.ID, err)
	}
	spec := m.buildOCISpec(&s, rec.Rootfs, u, ns, files, rec.CgroupPath)
	cfg, err := libcontainerConfig(s.ID, spec)
	if err != nil {
		return nil, err
	}
	lc, err = libcontainer.Create(m.lcRoot, s.ID, cfg)
	if err != nil {
		if errors.Is(err, libcontainer.ErrExist) {
			err = fmt.Errorf("%w: %w", err, ErrConflict)
		}
		return nil, fmt.Errorf("container %s: %w", s.ID, err)
	}

	logFile, err := openLog(rec.LogPath)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", s.ID, err)
	}
	// The log file itself, not a pipe, is the container's stdout and
	// stderr: a pipe to this process would block or kill the container
	// (SIGPIPE) once this process exits.
	proc := &libcontainer.Process{
		Args:             s.Args,
		Env:              spec.Process.Env,
		UID:              u.UID,
		GID:              u.GID,
		AdditionalGroups: u.Groups,
		Cwd:              spec.Process.Cwd,
		Stdout:           logFile,
		Stderr:           logFile,
		Init:             true,
	}
	err = lc.Start(proc)
	logFile.Close()
	if err != nil {
		return nil, fmt.Errorf("container %s: start init: %w", s.ID, err)
	}
	st, err := lc.State()
	if err != nil {
		_ = proc.Signal(unix.SIGKILL)
		_, _ = proc.Wait()
		return nil, fmt.Errorf("container %s: state: %w", s.ID, err)
	}
	rec.Env = spec.Process.Env
	rec.Pid = st.InitProcessPid
	rec.PidStartTime = st.InitProcessStartTime
	rec.CgroupPaths = st.CgroupPaths
	if err := saveRecord(dir, &rec); err != nil {
		_ = proc.Signal(unix.SIGKILL)
		_, _ = proc.Wait()
		return nil, fmt.Errorf("container %s: %w", s.ID, err)
	}
	c := &ctr{id: s.ID, rec: rec, lc: lc, proc: proc, done: make(chan struct{})}
	m.mu.Lock()
	m.ctrs[s.ID] = c
	m.mu.Unlock()
	if pidfd, err := openPidfd(rec.Pid, rec.PidStartTime); err == nil {
		go m.watchPidfd(c, pidfd)
	} else {
		go m.waitChild(c) // already gone: Wait returns at once
	}
	m.log.Debug("container created", zap.String("container", s.ID), zap.Int("pid", rec.Pid))
	return c.info(), nil
}

// info returns the public description of c.
func (c *ctr) info() *Container {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &Container{
		ID:         c.id,
		Pod:        c.rec.Spec.Pod,
		Pid:        c.rec.Pid,
		Rootfs:     c.rec.Rootfs,
		LogPath:    c.rec.LogPath,
		CgroupPath: c.rec.CgroupPath,
	}
}

func (c *ctr) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitChild reaps the init process this process started, blocking a
// thread until it exits; used only when no pidfd could be opened.
func (m *Manager) waitChild(c *ctr) {
	ps, _ := c.proc.Wait()
	m.finishExit(c, exitFromProcessState(ps))
}

// finishExit records how the init ended; the cgroup still exists (only
// Destroy removes it), so its OOM kill counter can be read now.
func (m *Manager) finishExit(c *ctr, e ExitStatus) {
	c.mu.Lock()
	e.StartedAt = c.rec.StartedAt
	e.FinishedAt = time.Now()
	e.finish(oomKills(c.rec.CgroupPaths))
	c.rec.Exit = &e
	err := saveRecord(m.containerDir(c.id), &c.rec)
	c.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("saving exit status", zap.String("container", c.id), zap.Error(err))
	}
	close(c.done)
	m.log.Debug("container exited", zap.String("container", c.id), zap.Int("code", e.Code), zap.String("reason", e.Reason))
}

// Start releases the init process of a created container into the
// container's command.
func (m *Manager) Start(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := m.get(id)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	started := !c.rec.StartedAt.IsZero()
	if !started && !c.exited() {
		// Set before the process runs, so that an immediate exit records
		// its start time.
		c.rec.StartedAt = time.Now()
	}
	c.mu.Unlock()
	if started {
		return fmt.Errorf("container %s: already started: %w", id, ErrConflict)
	}
	if c.exited() {
		return fmt.Errorf("container %s: exited before start: %w", id, ErrConflict)
	}
	if err := c.lc.Exec(); err != nil {
		return fmt.Errorf("container %s: start: %w", id, err)
	}
	c.mu.Lock()
	err = saveRecord(m.containerDir(id), &c.rec)
	c.mu.Unlock()
	return err
}

// Wait blocks until the container's init has exited and returns how, or
// until ctx is done.
func (m *Manager) Wait(ctx context.Context, id string) (ExitStatus, error) {
	c, err := m.get(id)
	if err != nil {
		return ExitStatus{}, err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.rec.Exit, nil
}

// Stop sends sig (SIGTERM if 0) to the container's init and SIGKILL after
// grace if it is still running, then waits for it to exit or for ctx. The
// init is PID 1 of its PID namespace: the kernel drops signals it has no
// handler for, except SIGKILL, which also kills every other process of the
// namespace. Stopping an exited container is not an error.
func (m *Manager) Stop(ctx context.Context, id string, sig syscall.Signal, grace time.Duration) error {
	c, err := m.get(id)
	if err != nil {
		return err
	}
	if sig == 0 {
		sig = unix.SIGTERM
	}
	if c.exited() {
		return nil
	}
	if sig != unix.SIGKILL {
		if err := c.lc.Signal(sig); err != nil && !c.exited() && !errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("container %s: signal %v: %w", id, sig, err)
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return m.kill(ctx, c)
}

// kill sends SIGKILL and waits for the exit.
func (m *Manager) kill(ctx context.Context, c *ctr) error {
	c.mu.Lock()
	c.killed = true
	c.mu.Unlock()
	if err := c.lc.Signal(unix.SIGKILL); err != nil && !c.exited() && !errors.Is(err, libcontainer.ErrNotRunning) {
		return fmt.Errorf("container %s: kill: %w", c.id, err)
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Destroy kills the container if it still runs and removes everything of
// it: cgroup (and its pod's cgroup level once empty), libcontainer state,
// rootfs mount and directories, log files. A container found in StateRoot
// but never recovered is destroyed too.
func (m *Manager) Destroy(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	c, err := m.get(id)
	if errors.Is(err, ErrNotFound) {
		if _, rerr := m.Recover(id); rerr != nil {
			if !exists(m.containerDir(id)) && !exists(filepath.Join(m.lcRoot, id)) {
				return err
			}
			// Half-created or corrupt: remove what is there.
			m.log.Warn("destroying unrecoverable container", zap.String("container", id), zap.Error(rerr))
			return m.destroyOrphan(id)
		}
		c, err = m.get(id)
	}
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	if !c.exited() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := m.kill(ctx, c)
		cancel()
		if err != nil {
			return fmt.Errorf("container %s: destroy: %w", id, err)
		}
	}
	if err := c.lc.Destroy(); err != nil {
		return fmt.Errorf("container %s: destroy: %w", id, err)
	}
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	m.cleanupDirs(id, &rec)
	m.mu.Lock()
	delete(m.ctrs, id)
	m.mu.Unlock()
	return nil
}

// cleanupDirs removes what Create made outside libcontainer.
func (m *Manager) cleanupDirs(id string, rec *record) {
	if rec.Spec.Pod != "" {
		m.removePodCgroups(rec.Spec.Pod)
	}
	dir := m.containerDir(id)
	if err := unmountAll(filepath.Join(dir, "rootfs")); err != nil {
		m.log.Warn("unmount rootfs", zap.String("container", id), zap.Error(err))
	}
	if err := os.RemoveAll(dir); err != nil {
		m.log.Warn("remove container dir", zap.String("container", id), zap.Error(err))
	}
	removeLogs(m.logPath(id), m.cfg.LogMaxFiles)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// destroyOrphan cleans up a container directory whose record or
// libcontainer state is missing or unreadable.
func (m *Manager) destroyOrphan(id string) error {
	if lc, err := libcontainer.Load(m.lcRoot, id); err == nil {
		_ = lc.Signal(unix.SIGKILL)
		if err := lc.Destroy(); err != nil {
			return fmt.Errorf("container %s: destroy: %w", id, err)
		}
	} else if !errors.Is(err, libcontainer.ErrNotExist) {
		m.log.Warn("loading orphan container", zap.String("container", id), zap.Error(err))
		_ = os.RemoveAll(filepath.Join(m.lcRoot, id))
	}
	rec, err := loadRecord(m.containerDir(id))
	if err != nil {
		rec = &record{Spec: Spec{ID: id}}
	}
	m.cleanupDirs(id, rec)
	return nil
}

// Inspect returns a snapshot of a container this Manager created or
// recovered.
func (m *Manager) Inspect(id string) (State, error) {
	c, err := m.get(id)
	if err != nil {
		return State{}, err
	}
	return m.state(c), nil
}

func (m *Manager) state(c *ctr) State {
	st := State{Container: *c.info(), Adopted: true}
	c.mu.Lock()
	st.CreatedAt = c.rec.CreatedAt
	st.StartedAt = c.rec.StartedAt
	st.CgroupPaths = c.rec.CgroupPaths
	if c.rec.Exit != nil {
		e := *c.rec.Exit
		st.Exit = &e
	}
	c.mu.Unlock()
	st.Status = StatusStopped
	if st.Exit == nil {
		st.Status = StatusRunning
		if s, err := c.lc.Status(); err == nil {
			switch s {
			case libcontainer.Created:
				st.Status = StatusCreated
			case libcontainer.Paused:
				st.Status = StatusPaused
			}
		}
		st.NetNSPath = m.netNSPath(&c.rec.Spec, st.Pid)
	}
	return st
}

// List returns every container in StateRoot, ordered by ID, including
// those left by a previous agent that are not recovered yet (Adopted is
// false for them; their Status comes from libcontainer's state).
func (m *Manager) List() ([]State, error) {
	entries, err := os.ReadDir(m.ctrRoot)
	if err != nil {
		return nil, err
	}
	var out []State
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || validateID(id) != nil {
			continue
		}
		if c, err := m.get(id); err == nil {
			out = append(out, m.state(c))
			continue
		}
		rec, err := loadRecord(m.containerDir(id))
		if err != nil {
			continue // being created, or half-created: Destroy cleans it
		}
		st := State{Container: Container{ID: id, Pod: rec.Spec.Pod, Pid: rec.Pid, Rootfs: rec.Rootfs, LogPath: rec.LogPath, CgroupPath: rec.CgroupPath},
			CreatedAt: rec.CreatedAt, StartedAt: rec.StartedAt, Exit: rec.Exit, CgroupPaths: rec.CgroupPaths, Status: StatusStopped}
		if rec.Exit == nil {
			if lc, err := libcontainer.Load(m.lcRoot, id); err == nil {
				if s, err := lc.Status(); err == nil {
					st.Status = Status(strings.ToLower(s.String()))
				}
			}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// netNSPath is where the container's network namespace can be entered.
func (m *Manager) netNSPath(s *Spec, pid int) string {
	switch {
	case s.Pod != "":
		if p, err := m.GetPod(s.Pod); err == nil {
			return p.NetNSPath
		}
		return ""
	case s.HostNetwork || pid <= 0:
		return ""
	default:
		return fmt.Sprintf("/proc/%d/ns/net", pid)
	}
}
