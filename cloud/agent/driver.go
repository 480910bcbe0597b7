package agent

import (
	"context"
	"io"
	"net"
	"time"
)

// Driver runs tasks (containers now, VMs later) on this node. It is the one shape the
// agent knows: the container runtime and the hypervisor each satisfy it through an
// adapter in this package, so the sync loop is the same for both (Nomad's
// plugins/drivers shape). Implementations are safe for concurrent use.
type Driver interface {
	// Name identifies the driver in task handles ("container", "vm").
	Name() string
	// PullImage makes ref available locally as policy says (Always, IfNotPresent,
	// Never) and returns the resolved image ID.
	PullImage(ctx context.Context, ref, policy string) (imageID string, err error)
	// Start creates and starts a task. The returned handle is persisted by the agent
	// and is enough to Recover the task after the agent restarts; its StartedAt is
	// when the task started (the agent uses its clock's now if zero). A task that
	// exits stays known to the driver (Inspect, Logs, Tasks) until Destroy.
	Start(ctx context.Context, cfg *TaskConfig) (*TaskHandle, error)
	// Wait blocks until the task exits or ctx ends. Several Waits of one task may be
	// in progress; each gets the same result, also when the task had already exited.
	Wait(ctx context.Context, id string) (*ExitResult, error)
	// Stop signals the task to end (SIGTERM), kills it after grace (zero kills at
	// once), and returns once it has exited. Stopping a task that already exited is
	// not an error; Stop may be called again, with a shorter grace, while one is in
	// progress.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Destroy removes what the task left (rootfs, cgroups, state, logs). The task
	// must have exited. Destroying a task the driver does not know is not an error,
	// so that cleanup can be repeated after a crash.
	Destroy(ctx context.Context, id string) error
	// Inspect reports the task's current state.
	Inspect(ctx context.Context, id string) (*TaskStatus, error)
	// Exec runs a command inside a running task and returns its exit code.
	Exec(ctx context.Context, id string, opts ExecOptions) (int, error)
	// Logs copies the task's output to w.
	Logs(ctx context.Context, id string, opts LogOptions, w io.Writer) error
	// Recover re-attaches to a task that kept running while the agent was down, so
	// that Wait, Stop, Exec and Logs work on it again. The agent calls it only for a
	// task that Tasks listed and Inspect did not report as exited.
	Recover(ctx context.Context, h *TaskHandle) error
	// Tasks lists the tasks the driver knows of on this node, running or not, so the
	// agent can adopt its own and remove those of pods that no longer exist.
	Tasks(ctx context.Context) ([]*TaskHandle, error)
	// ReleaseSandbox frees what the pod's tasks shared (network, IPC and UTS
	// namespaces), once the pod's last task is destroyed. Releasing a sandbox that
	// does not exist (a pod that never started, or one released before a crash) is
	// not an error.
	ReleaseSandbox(ctx context.Context, podUID string) error
}

// PodDialer is implemented by a driver that can open connections inside a pod's
// network namespace. The agent uses it for the httpGet and tcpSocket probes and hooks
// of a pod without hostNetwork while the pod has no address the host can reach (until
// the network issue gives pods one, a pod has loopback only): it dials address (for
// example "127.0.0.1:8080") from within the pod. Without it such probes fail with a
// message saying so; exec probes always work.
type PodDialer interface {
	DialPod(ctx context.Context, podUID, network, address string) (net.Conn, error)
}

// TaskConfig is everything a driver needs to run one container of a pod. The agent
// resolves image config, env sources and volumes before it fills this in.
type TaskConfig struct {
	// ID is unique on the node and stable for one attempt of one container:
	// "<pod uid>.<container name>.<attempt>".
	ID            string
	PodUID        string
	PodNamespace  string
	PodName       string
	ContainerName string
	Attempt       int
	// Image is the reference as the pod names it; ImageID what PullImage returned.
	Image   string
	ImageID string
	// Command and Args override the image's entrypoint and cmd as Kubernetes does:
	// Command replaces Entrypoint (and drops Cmd), Args replaces Cmd.
	Command    []string
	Args       []string
	Env        []string // KEY=VALUE, added after the image's env
	WorkingDir string
	// User is "uid[:gid]"; empty means the image's user.
	User     string
	Hostname string
	// CPUMilli and MemoryBytes are limits; zero means none.
	CPUMilli    int64
	MemoryBytes int64
	PidsLimit   int64
	Mounts      []Mount
	// Files are written per pod and bind-mounted: /etc/hosts, /etc/hostname,
	// /etc/resolv.conf.
	Files          map[string][]byte
	Privileged     bool
	ReadOnlyRootfs bool
	CapAdd         []string
	CapDrop        []string
	HostNetwork    bool
	TTY            bool
	Stdin          bool
}

// Mount is a host path bind-mounted into the task.
type Mount struct {
	Source      string
	Destination string
	ReadOnly    bool
}

// TaskHandle is what the agent persists about a task to find it again.
type TaskHandle struct {
	ID            string            `json:"id"`
	Driver        string            `json:"driver"`
	PodUID        string            `json:"podUID"`
	ContainerName string            `json:"containerName"`
	Attempt       int               `json:"attempt"`
	PID           int               `json:"pid,omitempty"`
	StartedAt     time.Time         `json:"startedAt"`
	State         map[string]string `json:"state,omitempty"` // driver-specific
}

// TaskState is where a task is in its life.
type TaskState string

// Task states.
const (
	TaskRunning TaskState = "running"
	TaskExited  TaskState = "exited"
	TaskUnknown TaskState = "unknown"
)

// TaskStatus is a task's state as the driver sees it.
type TaskStatus struct {
	ID         string
	State      TaskState
	PID        int
	StartedAt  time.Time
	FinishedAt time.Time
	Exit       *ExitResult // set when exited
}

// ExitResult is how a task ended.
type ExitResult struct {
	// Code is the exit code, 128+signal when a signal ended the task.
	Code       int
	Signal     int
	OOMKilled  bool
	FinishedAt time.Time
	// Err is set when the exit could not be observed (for example, the task ended
	// while the agent was down and its code is lost).
	Err error
}

// Reason is the Kubernetes reason for the exit: Completed, Error or OOMKilled.
func (e *ExitResult) Reason() string {
	switch {
	case e.OOMKilled:
		return "OOMKilled"
	case e.Code == 0 && e.Err == nil:
		return "Completed"
	}
	return "Error"
}

// ExecOptions says what to run in a task and where its stdio goes.
type ExecOptions struct {
	Command []string
	Env     []string
	TTY     bool
	Stdin   io.Reader // may be nil
	Stdout  io.Writer
	Stderr  io.Writer // ignored with TTY: a terminal has one stream
	// Resize delivers terminal size changes; may be nil.
	Resize <-chan TerminalSize
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// LogOptions narrows what Logs copies.
type LogOptions struct {
	Follow bool
	// Tail is how many lines from the end to start with; negative means all.
	Tail int
	// Previous asks for the log of the attempt before the current one; the agent
	// resolves it to that attempt's task ID before calling Logs.
	Previous bool
}
