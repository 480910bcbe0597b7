// Package vmdriver runs instance launcher pods as QEMU virtual machines. The Driver
// adapts package hypervisor (which knows nothing of the control plane) to
// agent.Driver, so the agent's sync loop, restarts, adoption and deletion are the
// same for VMs as for containers: it starts, stops, inspects and re-attaches one
// instance's QEMU. The Reconciler keeps what the pod does not carry in step with the
// Instance, against the VMs the Driver runs: pause and resume, reboots, hot-plugged
// volumes, and the status the node reports (power state, volumes).
//
// Layout on the node, per instance (StateDir/instances/<id>/): disk.qcow2 (the
// overlay on the image, kept while the instance exists, so a stopped VM keeps its
// disk), seed.iso (cloud-init), task.json (the running task's handle), and QEMU's
// qmp.sock, console.sock, console.log and qemu.pid. Volumes are files in
// StateDir/volumes/, images are cached by digest in StateDir/images/. QEMU runs in
// the cgroup CgroupParent/<pod uid>/<task id>, where the container runtime would put
// the launcher pod's container, so the pod's cgroup holds the VM.
package vmdriver

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/hypervisor"
	"github.com/cloudbox/cloudbox/internal/atomicfile"
	"github.com/cloudbox/cloudbox/internal/clock"
)

var _ agent.Driver = (*Driver)(nil)

// DriverName names the VM driver in task handles.
const DriverName = "vm"

// Config configures the driver.
type Config struct {
	// Client reads Instances, Images, Flavors, KeyPairs and Volumes, downloads image
	// files, and writes the instances' node-side status. Required.
	Client *client.Client
	// NodeName is this node's name (volumes record where their file is). Required.
	NodeName string
	// StateDir holds instances/, volumes/ and images/ (DATA_DIR/agent/vm). Required.
	StateDir string
	// QEMU is the emulator binary; if empty, qemu-system-x86_64.
	QEMU string
	// Accel is the accelerator every VM runs with (from hypervisor.ProbeAccel).
	Accel hypervisor.Accel
	// Network, if not nil, puts VMs on the node bridge; nil gives them QEMU's
	// user-mode NAT only.
	Network agent.PodNetwork
	// SoftRebootTimeout is how long a soft reboot waits for the guest before it
	// resets it. If zero, 60 s.
	SoftRebootTimeout time.Duration
	// CgroupParent is the absolute cgroup path pods go under, the container runtime's
	// (server.Config.CgroupParent). If empty, "/cloudbox".
	CgroupParent string
	Logger       *zap.Logger
	// Clock times the waits for QEMU to exit and the retries of a failed reconcile,
	// and stamps when a VM started and ended. If nil, the machine's.
	Clock agent.Clock
}

// Driver is the VM driver. It is safe for concurrent use.
type Driver struct {
	cfg Config
	log *zap.Logger

	mu    sync.Mutex
	tasks map[string]*task // by task ID, for the VMs this process started or re-attached

	// started carries the keys of the instances whose VM this driver started or
	// re-attached, for the Reconciler to bring in line at once.
	started chan string
}

// task is one run of one VM.
type task struct {
	handle agent.TaskHandle
	dir    string
	inst   instanceRef
	cgroup string // QEMU's cgroup path; "" for a run recorded before VMs had one
	vm     *hypervisor.VM
	done   chan struct{} // closed when QEMU has exited
	exit   *agent.ExitResult
}

// instanceRef names the Instance a task runs.
type instanceRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

func (r instanceRef) key() string { return r.Namespace + "/" + r.Name }

// New returns the driver; NewReconciler makes its reconciler.
func New(cfg Config) (*Driver, error) {
	if cfg.Client == nil || cfg.StateDir == "" || cfg.NodeName == "" {
		return nil, errors.New("vmdriver: a client, a node name and a state directory are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.SoftRebootTimeout <= 0 {
		cfg.SoftRebootTimeout = 60 * time.Second
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/cloudbox"
	}
	if !path.IsAbs(cfg.CgroupParent) || path.Clean(cfg.CgroupParent) == "/" {
		return nil, fmt.Errorf("vmdriver: CgroupParent %q must be an absolute path below /", cfg.CgroupParent)
	}
	cfg.CgroupParent = path.Clean(cfg.CgroupParent)
	for _, sub := range []string{"instances", "volumes", "images"} {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("vmdriver: %w", err)
		}
	}
	return &Driver{cfg: cfg, log: cfg.Logger.Named("vm"), tasks: map[string]*task{}, started: make(chan string, 256)}, nil
}

// Name is "vm".
func (d *Driver) Name() string { return DriverName }

// instanceDir is where an instance's files live. The name is short because QEMU's
// sockets live in it and a unix socket path has at most 107 bytes.
func (d *Driver) instanceDir(uid string) string {
	return filepath.Join(d.cfg.StateDir, "instances", shortID(uid))
}

// shortID is the first 16 hex digits of a UID (64 bits: unique enough on a node).
func shortID(uid string) string {
	s := strings.ReplaceAll(uid, "-", "")
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}

// macFor derives a VM's MAC from its instance UID, under QEMU's 52:54:00 prefix, so
// the guest keeps its MAC across stops and starts.
func macFor(uid string) string {
	sum := sha256.Sum256([]byte(uid))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", sum[0], sum[1], sum[2])
}

const taskFile = "task.json"

// taskRecord is task.json: the handle and the instance, enough to find the VM again,
// and QEMU's cgroup, recorded so that it is removed where it was made even if
// CgroupParent changed since.
type taskRecord struct {
	Handle   agent.TaskHandle `json:"handle"`
	Instance instanceRef      `json:"instance"`
	Cgroup   string           `json:"cgroup,omitempty"`
}

func (d *Driver) saveTask(t *task) error {
	b, err := json.Marshal(taskRecord{Handle: t.handle, Instance: t.inst, Cgroup: t.cgroup})
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(t.dir, taskFile), b, 0o600)
}

// diskTasks reads every task.json on the node.
func (d *Driver) diskTasks() ([]*taskRecord, []string, error) {
	dirs, err := filepath.Glob(filepath.Join(d.cfg.StateDir, "instances", "*", taskFile))
	if err != nil {
		return nil, nil, err
	}
	var recs []*taskRecord
	var paths []string
	for _, p := range dirs {
		r, err := readTaskRecord(filepath.Dir(p))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			d.log.Warn("unreadable VM task record; ignoring it", zap.String("path", p), zap.Error(err))
			continue
		}
		recs = append(recs, r)
		paths = append(paths, filepath.Dir(p))
	}
	return recs, paths, nil
}

// readTaskRecord reads the task.json of an instance directory.
func readTaskRecord(dir string) (*taskRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, taskFile))
	if err != nil {
		return nil, err
	}
	var r taskRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.Handle.ID == "" {
		return nil, errors.New("no task ID")
	}
	return &r, nil
}

// lookup finds a task by ID: one this process tracks, or one recorded on disk (found
// after a restart), which it re-attaches to if its QEMU still runs.
func (d *Driver) lookup(ctx context.Context, id string) (*task, error) {
	d.mu.Lock()
	t := d.tasks[id]
	d.mu.Unlock()
	if t != nil {
		return t, nil
	}
	recs, dirs, err := d.diskTasks()
	if err != nil {
		return nil, err
	}
	for i, r := range recs {
		if r.Handle.ID != id {
			continue
		}
		t := &task{handle: r.Handle, dir: dirs[i], inst: r.Instance, cgroup: r.Cgroup, done: make(chan struct{})}
		vm, err := hypervisor.Attach(ctx, t.dir)
		switch {
		case errors.Is(err, hypervisor.ErrNotRunning):
			t.exit = &agent.ExitResult{Code: 0, Err: errors.New("the VM ended while the agent was down")}
			close(t.done)
		case err != nil:
			return nil, fmt.Errorf("re-attaching VM %s: %w", id, err)
		default:
			t.vm = vm
		}
		return d.track(t), nil
	}
	return nil, fmt.Errorf("VM task %s: not found", id)
}

// track registers t and, for a running VM, watches for its exit.
func (d *Driver) track(t *task) *task {
	d.mu.Lock()
	if cur := d.tasks[t.handle.ID]; cur != nil {
		d.mu.Unlock()
		if t.vm != nil && t.vm != cur.vm {
			_ = t.vm.Close()
		}
		return cur
	}
	d.tasks[t.handle.ID] = t
	d.mu.Unlock()
	if t.vm != nil {
		go func() {
			<-t.vm.Done()
			reason := t.vm.ExitReason()
			res := &agent.ExitResult{FinishedAt: d.cfg.Clock.Now()}
			switch reason {
			case hypervisor.ExitKilled:
				res.Code, res.Signal = 137, 9
			case "", "guest-shutdown", "host-qmp-quit", "host-signal", "guest-reset":
			default:
				res.Code = 1
			}
			d.mu.Lock()
			t.exit = res
			d.mu.Unlock()
			close(t.done)
			d.log.Info("VM exited", zap.String("instance", t.inst.key()), zap.String("reason", reason))
		}()
	}
	return t
}

// Wait blocks until the VM's QEMU has exited.
func (d *Driver) Wait(ctx context.Context, id string) (*agent.ExitResult, error) {
	t, err := d.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	select {
	case <-t.done:
		d.mu.Lock()
		defer d.mu.Unlock()
		return t.exit, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stop powers the VM off through ACPI, and has QEMU quit (then kills it) after grace.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	t, err := d.lookup(ctx, id)
	if err != nil {
		return err
	}
	if t.vm == nil {
		return nil
	}
	select {
	case <-t.done:
		return nil
	default:
	}
	d.log.Info("stopping VM", zap.String("instance", t.inst.key()), zap.Duration("grace", grace))
	return t.vm.Stop(ctx, grace)
}

// Destroy removes the run's files and cgroup. The disk stays while the instance
// exists (a stopped VM keeps it); once the instance is gone, its whole directory goes.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	t, err := d.lookup(ctx, id)
	if err != nil {
		return nil // unknown: nothing left
	}
	select {
	case <-t.done:
	default:
		return fmt.Errorf("VM task %s is still running", id)
	}
	if t.vm != nil {
		_ = t.vm.Close()
	}
	// An empty cgroup left behind costs little; a pod stuck in deletion would cost more.
	if err := removeCgroup(t.cgroup); err != nil {
		d.log.Warn("removing a VM's cgroup failed", zap.String("instance", t.inst.key()), zap.String("cgroup", t.cgroup), zap.Error(err))
	}
	for _, f := range []string{taskFile, "qmp.sock", "console.sock", "qemu.pid"} {
		if err := os.Remove(filepath.Join(t.dir, f)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	d.mu.Lock()
	delete(d.tasks, id)
	d.mu.Unlock()
	d.sweepInstance(ctx, t.inst)
	return nil
}

// sweepInstance removes an instance's directory once the Instance is gone (or is
// another one by that name) and no task of it runs.
func (d *Driver) sweepInstance(ctx context.Context, ref instanceRef) {
	o, err := d.cfg.Client.Get(ctx, instanceKind, ref.Namespace, ref.Name)
	if err == nil && o.GetObjectMeta().UID == ref.UID {
		return
	}
	if err != nil && !client.IsNotFound(err) {
		return // cannot tell: keep the disk
	}
	d.removeInstanceDir(ref.UID)
}

func (d *Driver) removeInstanceDir(uid string) {
	dir := d.instanceDir(uid)
	if _, err := os.Stat(filepath.Join(dir, taskFile)); err == nil {
		return // a run is recorded: its Destroy sweeps
	}
	if err := os.RemoveAll(dir); err != nil {
		d.log.Warn("removing a deleted instance's files failed", zap.String("dir", dir), zap.Error(err))
	} else {
		d.log.Info("removed the files of a deleted instance", zap.String("dir", dir))
	}
}

// Inspect reports whether the VM's QEMU runs.
func (d *Driver) Inspect(ctx context.Context, id string) (*agent.TaskStatus, error) {
	t, err := d.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	st := &agent.TaskStatus{ID: id, PID: t.handle.PID, StartedAt: t.handle.StartedAt, State: agent.TaskRunning}
	select {
	case <-t.done:
		d.mu.Lock()
		st.State, st.Exit = agent.TaskExited, t.exit
		st.FinishedAt = t.exit.FinishedAt
		d.mu.Unlock()
	default:
	}
	return st, nil
}

// Recover re-attaches to a VM that kept running while the agent was down.
func (d *Driver) Recover(ctx context.Context, h *agent.TaskHandle) error {
	t, err := d.lookup(ctx, h.ID)
	if err != nil {
		return err
	}
	d.notifyStarted(t.inst)
	return nil
}

// Tasks lists the VM runs recorded on this node.
func (d *Driver) Tasks(ctx context.Context) ([]*agent.TaskHandle, error) {
	recs, _, err := d.diskTasks()
	if err != nil {
		return nil, err
	}
	out := make([]*agent.TaskHandle, 0, len(recs))
	for _, r := range recs {
		h := r.Handle
		out = append(out, &h)
	}
	return out, nil
}

// ReleaseSandbox frees the VM's tap and address.
func (d *Driver) ReleaseSandbox(ctx context.Context, podUID string) error {
	if d.cfg.Network == nil {
		return nil
	}
	return d.cfg.Network.TeardownTap(ctx, podUID)
}

// notifyStarted tells the Reconciler that inst's VM runs.
func (d *Driver) notifyStarted(inst instanceRef) {
	select {
	case d.started <- inst.key():
	default: // full: the Reconciler's resync catches it
	}
}

// runningInstances returns the keys of the instances this driver runs a VM of.
func (d *Driver) runningInstances() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	keys := make([]string, 0, len(d.tasks))
	for _, t := range d.tasks {
		keys = append(keys, t.inst.key())
	}
	return keys
}

// running returns the live task of an instance, or nil.
func (d *Driver) running(uid string) *task {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.tasks {
		if t.inst.UID != uid || t.vm == nil {
			continue
		}
		select {
		case <-t.done:
		default:
			return t
		}
	}
	return nil
}

// cgroupPath is QEMU's cgroup for a run of a launcher pod: where the container runtime
// puts a pod's container (<parent>/<pod uid>/<task id>), so that the pod's cgroup
// accounts for the VM as it would for a container.
func (d *Driver) cgroupPath(podUID, taskID string) string {
	return path.Join(d.cfg.CgroupParent, podUID, taskID)
}

// removeCgroup removes a run's cgroup (p, once its QEMU has exited) and then the pod's
// level above it, which holds nothing else: a launcher pod has one container, the VM,
// and never restarts it. p == "" (a run recorded without one) is a no-op.
func removeCgroup(p string) error {
	if p == "" {
		return nil
	}
	if err := hypervisor.RemoveCgroup(p); err != nil {
		return err
	}
	return hypervisor.RemoveCgroup(path.Dir(p))
}

// cpuShares weighs a VM's CPU time as its pod's CPU request would a container's
// (1024 shares per CPU requested), with the kernel's floor of 2.
func cpuShares(vcpus int) uint64 {
	return max(2, uint64(vcpus)*1024/api.VMCPUAllocationRatio)
}
