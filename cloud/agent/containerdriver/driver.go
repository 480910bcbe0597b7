// Package containerdriver runs the agent's tasks as containers: images from
// runtime/image, containers and pod namespaces from runtime/container. It adapts
// those packages (which know nothing of the control plane) to agent.Driver.
package containerdriver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/internal/clock"
	"github.com/cloudbox/cloudbox/internal/keylock"
	"github.com/cloudbox/cloudbox/runtime/container"
	"github.com/cloudbox/cloudbox/runtime/image"
)

var _ agent.Driver = (*Driver)(nil)

// Config configures the driver.
type Config struct {
	// DataDir holds images/ and containers/ (the agent's data dir).
	DataDir string
	// Images configures registries: insecure ones, mirrors, credentials.
	Images image.Options
	// CgroupParent is the cgroup every pod goes under. If empty, "/cloudbox".
	CgroupParent string
	// Network, if not nil, attaches each pod sandbox that does not use the host's
	// network; nil leaves pods with loopback only.
	Network agent.PodNetwork
	Logger  *zap.Logger
	// Clock times the waits of the node cleanup for the kernel to free a cgroup. If
	// nil, the machine's.
	Clock agent.Clock
}

// Driver is the container driver. It is safe for concurrent use.
type Driver struct {
	images *image.Store
	ctrs   *container.Manager
	log    *zap.Logger
	clock  agent.Clock

	cgroupParent string
	network      agent.PodNetwork

	// sandboxes serialises setting up and releasing one pod's sandbox (namespaces
	// and network), so that no task of the pod starts before its network is
	// attached; other pods' sandboxes are set up meanwhile.
	sandboxes keylock.Map

	mu    sync.Mutex
	holds map[string]func() // task ID → release of its image, so prune keeps it
}

// New opens the image store and the container manager under cfg.DataDir.
func New(cfg Config) (*Driver, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/cloudbox"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	cfg.Images.Logger = cfg.Logger.Named("images")
	images, err := image.Open(filepath.Join(cfg.DataDir, "images"), cfg.Images)
	if err != nil {
		return nil, err
	}
	ctrs, err := container.New(container.Config{
		StateRoot:    filepath.Join(cfg.DataDir, "containers"),
		CgroupParent: cfg.CgroupParent,
		Logger:       cfg.Logger.Named("containers"),
	})
	if err != nil {
		images.Close()
		return nil, err
	}
	return &Driver{images: images, ctrs: ctrs, log: cfg.Logger, clock: cfg.Clock, cgroupParent: cfg.CgroupParent, network: cfg.Network, holds: map[string]func(){}}, nil
}

// Images is the driver's image store (for the image commands).
func (d *Driver) Images() *image.Store { return d.images }

// Close releases the stores; running containers keep running.
func (d *Driver) Close() error {
	err := d.ctrs.Close()
	if ierr := d.images.Close(); err == nil {
		err = ierr
	}
	return err
}

// Name is "container".
func (d *Driver) Name() string { return "container" }

// PullImage makes ref present as policy says and returns its image ID.
func (d *Driver) PullImage(ctx context.Context, ref, policy string) (string, error) {
	img, err := d.images.Pull(ctx, ref, image.PullPolicy(policy), nil)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// commandLine applies Kubernetes's rules: command replaces the entrypoint (and drops
// the image's cmd), args replace the cmd.
func commandLine(cfg *agent.TaskConfig, ic image.Config) []string {
	switch {
	case len(cfg.Command) > 0:
		return append(append([]string{}, cfg.Command...), cfg.Args...)
	case len(cfg.Args) > 0:
		return append(append([]string{}, ic.Entrypoint...), cfg.Args...)
	}
	return append(append([]string{}, ic.Entrypoint...), ic.Cmd...)
}

// Start creates the pod's namespaces with its first task, then the container.
func (d *Driver) Start(ctx context.Context, cfg *agent.TaskConfig) (*agent.TaskHandle, error) {
	ref := cfg.ImageID
	if ref == "" {
		ref = cfg.Image
	}
	img, err := d.images.Get(ref)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", cfg.Image, err)
	}
	if _, err := d.ensurePod(ctx, cfg); err != nil {
		return nil, err
	}
	args := commandLine(cfg, img.Config)
	if len(args) == 0 {
		return nil, fmt.Errorf("container %s: neither the pod nor image %s says what to run", cfg.ContainerName, cfg.Image)
	}
	spec := container.Spec{
		ID:              cfg.ID,
		Pod:             cfg.PodUID,
		RootfsLowerDirs: d.images.LayerDirs(img),
		Args:            args,
		Env:             append(append([]string{}, img.Config.Env...), cfg.Env...),
		Cwd:             firstNonEmpty(cfg.WorkingDir, img.Config.WorkingDir),
		User:            firstNonEmpty(cfg.User, img.Config.User),
		Limits:          container.Limits{CPUMilli: cfg.CPUMilli, MemoryBytes: cfg.MemoryBytes, Pids: cfg.PidsLimit},
		ReadOnlyRootfs:  cfg.ReadOnlyRootfs,
		Privileged:      cfg.Privileged,
		CapAdd:          cfg.CapAdd,
		CapDrop:         cfg.CapDrop,
	}
	for _, m := range cfg.Mounts {
		spec.Mounts = append(spec.Mounts, container.Mount{Source: m.Source, Destination: m.Destination, ReadOnly: m.ReadOnly, Type: container.MountBind})
	}
	release := d.images.Hold(img)
	if _, err := d.ctrs.Create(ctx, spec); err != nil {
		release()
		return nil, err
	}
	if err := d.ctrs.Start(ctx, cfg.ID); err != nil {
		_ = d.ctrs.Destroy(cfg.ID)
		release()
		return nil, err
	}
	d.mu.Lock()
	d.holds[cfg.ID] = release
	d.mu.Unlock()
	st, err := d.ctrs.Inspect(cfg.ID)
	if err != nil {
		return nil, err
	}
	return &agent.TaskHandle{ID: cfg.ID, Driver: d.Name(), PodUID: cfg.PodUID, ContainerName: cfg.ContainerName,
		Attempt: cfg.Attempt, PID: st.Pid, StartedAt: st.StartedAt, State: map[string]string{"image": img.ID}}, nil
}

// ensurePod returns the pod's shared namespaces, creating them for its first task.
func (d *Driver) ensurePod(ctx context.Context, cfg *agent.TaskConfig) (*container.Pod, error) {
	defer d.sandboxes.Lock(cfg.PodUID)()
	if p, err := d.ctrs.GetPod(cfg.PodUID); err == nil {
		return p, nil
	} else if !errors.Is(err, container.ErrNotFound) {
		return nil, err
	}
	hostname := cfg.Hostname
	if cfg.HostNetwork {
		hostname = ""
	}
	p, err := d.ctrs.CreatePod(container.PodConfig{ID: cfg.PodUID, Hostname: hostname, HostNetwork: cfg.HostNetwork, Files: cfg.Files})
	if err != nil || d.network == nil || cfg.HostNetwork {
		return p, err
	}
	// The sandbox gets its address before its first container runs, so the
	// application sees eth0 from its first instruction.
	if _, err := d.network.Setup(ctx, cfg.PodUID, p.NetNSPath); err != nil {
		_ = d.ctrs.RemovePod(cfg.PodUID)
		return nil, fmt.Errorf("pod network: %w", err)
	}
	return p, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Wait blocks until the container exits.
func (d *Driver) Wait(ctx context.Context, id string) (*agent.ExitResult, error) {
	es, err := d.ctrs.Wait(ctx, id)
	if err != nil {
		return nil, err
	}
	return exitResult(es), nil
}

func exitResult(es container.ExitStatus) *agent.ExitResult {
	r := &agent.ExitResult{Code: es.Code, Signal: int(es.Signal), OOMKilled: es.OOMKilled, FinishedAt: es.FinishedAt}
	if es.Reason == container.ReasonUnknown {
		r.Err = errors.New("the container exited while the agent was down; its exit code is unknown")
	}
	return r
}

// Stop sends SIGTERM, then SIGKILL after grace.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	err := d.ctrs.Stop(ctx, id, syscall.SIGTERM, grace)
	if errors.Is(err, container.ErrNotFound) {
		return nil
	}
	return err
}

// Destroy removes the container and lets its image be pruned again.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	err := d.ctrs.Destroy(id)
	if errors.Is(err, container.ErrNotFound) {
		err = nil
	}
	d.mu.Lock()
	release := d.holds[id]
	delete(d.holds, id)
	d.mu.Unlock()
	if release != nil {
		release()
	}
	return err
}

// Inspect reports the container's state.
func (d *Driver) Inspect(ctx context.Context, id string) (*agent.TaskStatus, error) {
	st, err := d.ctrs.Inspect(id)
	if err != nil {
		return nil, err
	}
	ts := &agent.TaskStatus{ID: id, PID: st.Pid, StartedAt: st.StartedAt, State: agent.TaskUnknown}
	switch st.Status {
	case container.StatusRunning, container.StatusPaused:
		ts.State = agent.TaskRunning
	case container.StatusStopped:
		ts.State = agent.TaskExited
	}
	if st.Exit != nil {
		ts.Exit = exitResult(*st.Exit)
		ts.FinishedAt = st.Exit.FinishedAt
	}
	return ts, nil
}

// Exec runs a command in the container, with a terminal if opts.TTY.
func (d *Driver) Exec(ctx context.Context, id string, opts agent.ExecOptions) (int, error) {
	es := container.ExecSpec{Args: opts.Command, Env: opts.Env, TTY: opts.TTY, Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr}
	if opts.TTY && opts.Resize != nil {
		resize := make(chan [2]uint16, 1)
		// A size already waiting is passed on before the exec starts, so that
		// it becomes the terminal's initial size rather than a resize.
		select {
		case sz, ok := <-opts.Resize:
			if ok {
				resize <- [2]uint16{sz.Width, sz.Height}
			}
		default:
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case sz, ok := <-opts.Resize:
					if !ok {
						return
					}
					select {
					case resize <- [2]uint16{sz.Width, sz.Height}:
					case <-done:
						return
					}
				case <-done:
					return
				}
			}
		}()
		es.Resize = resize
	}
	return d.ctrs.Exec(ctx, id, es)
}

// Logs copies the container's log; Tail applies to a log that is not followed.
func (d *Driver) Logs(ctx context.Context, id string, opts agent.LogOptions, w io.Writer) error {
	if opts.Tail < 0 || opts.Follow {
		return d.ctrs.Logs(ctx, id, opts.Follow, w)
	}
	var buf bytes.Buffer
	if err := d.ctrs.Logs(ctx, id, false, &buf); err != nil {
		return err
	}
	_, err := w.Write(lastLines(buf.Bytes(), opts.Tail))
	return err
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}

// Recover re-attaches to a container that kept running while the agent was down.
func (d *Driver) Recover(ctx context.Context, h *agent.TaskHandle) error {
	if _, err := d.ctrs.Recover(h.ID); err != nil {
		return err
	}
	if ref := h.State["image"]; ref != "" {
		if img, err := d.images.Get(ref); err == nil {
			d.mu.Lock()
			if d.holds[h.ID] == nil {
				d.holds[h.ID] = d.images.Hold(img)
			}
			d.mu.Unlock()
		}
	}
	return nil
}

// Tasks lists every container on the node, found from the runtime's own state, so
// tasks whose handles were lost are found too.
func (d *Driver) Tasks(ctx context.Context) ([]*agent.TaskHandle, error) {
	states, err := d.ctrs.List()
	if err != nil {
		return nil, err
	}
	var out []*agent.TaskHandle
	for _, st := range states {
		uid, name, attempt, ok := ParseTaskID(st.ID)
		if !ok {
			continue // not an agent's container
		}
		out = append(out, &agent.TaskHandle{ID: st.ID, Driver: d.Name(), PodUID: uid, ContainerName: name,
			Attempt: attempt, PID: st.Pid, StartedAt: st.StartedAt})
	}
	return out, nil
}

// ParseTaskID splits "<pod uid>.<container>.<attempt>".
func ParseTaskID(id string) (podUID, container string, attempt int, ok bool) {
	parts := strings.Split(id, ".")
	if len(parts) != 3 {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		return "", "", 0, false
	}
	return parts[0], parts[1], n, true
}

// ReleaseSandbox removes the pod's shared namespaces and files.
func (d *Driver) ReleaseSandbox(ctx context.Context, podUID string) error {
	defer d.sandboxes.Lock(podUID)()
	if d.network != nil {
		if err := d.network.Teardown(ctx, podUID); err != nil {
			d.log.Warn("pod network teardown", zap.String("pod", podUID), zap.Error(err))
		}
	}
	err := d.ctrs.RemovePod(podUID)
	if errors.Is(err, container.ErrNotFound) {
		return nil
	}
	return err
}
