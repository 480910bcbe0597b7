package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/internal/clock"
)

// fakeTask is one task of the fake driver.
type fakeTask struct {
	h    TaskHandle
	cfg  *TaskConfig
	done chan struct{}
	exit *ExitResult
}

func (t *fakeTask) running() bool {
	select {
	case <-t.done:
		return false
	default:
		return true
	}
}

// fakeDriver runs no processes: tasks run until the test (or Stop) ends them. It
// records every call and is safe for concurrent use. It outlives agents, as a real
// driver's tasks do.
type fakeDriver struct {
	clk *clock.Fake

	mu       sync.Mutex
	tasks    map[string]*fakeTask
	calls    []string
	changed  chan struct{} // closed and replaced on every call
	pid      int
	pullErr  map[string]error // by image
	startErr map[string]error // by container name
	// exec decides the exit code of an Exec; nil means 0 for everything.
	exec func(taskID string, cmd []string) int
}

func newFakeDriver(clk *clock.Fake) *fakeDriver {
	return &fakeDriver{clk: clk, tasks: map[string]*fakeTask{}, changed: make(chan struct{}),
		pullErr: map[string]error{}, startErr: map[string]error{}}
}

var _ Driver = (*fakeDriver)(nil)

func (d *fakeDriver) recordLocked(format string, args ...any) {
	d.calls = append(d.calls, fmt.Sprintf(format, args...))
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *fakeDriver) Name() string { return "fake" }

func (d *fakeDriver) PullImage(ctx context.Context, ref, policy string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recordLocked("pull %s %s", ref, policy)
	if err := d.pullErr[ref]; err != nil {
		return "", err
	}
	return "sha256:" + strings.NewReplacer(":", "-", "/", "-").Replace(ref), nil
}

func (d *fakeDriver) Start(ctx context.Context, cfg *TaskConfig) (*TaskHandle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recordLocked("start %s", cfg.ID)
	if err := d.startErr[cfg.ContainerName]; err != nil {
		return nil, err
	}
	if _, ok := d.tasks[cfg.ID]; ok {
		return nil, fmt.Errorf("task %s already exists", cfg.ID)
	}
	for _, t := range d.tasks {
		if t.h.PodUID == cfg.PodUID && t.h.ContainerName == cfg.ContainerName && t.running() {
			return nil, fmt.Errorf("duplicate: task %s of container %s is still running", t.h.ID, cfg.ContainerName)
		}
	}
	d.pid++
	t := &fakeTask{
		h: TaskHandle{ID: cfg.ID, Driver: "fake", PodUID: cfg.PodUID, ContainerName: cfg.ContainerName,
			Attempt: cfg.Attempt, PID: 1000 + d.pid, StartedAt: d.clk.Now(), State: map[string]string{"k": "v"}},
		cfg: cfg, done: make(chan struct{}),
	}
	d.tasks[cfg.ID] = t
	h := t.h
	return &h, nil
}

func (d *fakeDriver) get(id string) (*fakeTask, error) {
	t, ok := d.tasks[id]
	if !ok {
		return nil, fmt.Errorf("task %s: no such task", id)
	}
	return t, nil
}

func (d *fakeDriver) Wait(ctx context.Context, id string) (*ExitResult, error) {
	d.mu.Lock()
	t, err := d.get(id)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	res := *t.exit
	return &res, nil
}

// exitLocked ends a running task.
func (d *fakeDriver) exitLocked(t *fakeTask, res ExitResult) {
	if !t.running() {
		return
	}
	res.FinishedAt = d.clk.Now()
	t.exit = &res
	close(t.done)
	d.recordLocked("exited %s %d", t.h.ID, res.Code)
}

func (d *fakeDriver) Stop(ctx context.Context, id string, grace time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recordLocked("stop %s %s", id, grace)
	t, err := d.get(id)
	if err != nil {
		return err
	}
	if grace > 0 {
		d.exitLocked(t, ExitResult{Code: 143, Signal: 15})
	} else {
		d.exitLocked(t, ExitResult{Code: 137, Signal: 9})
	}
	return nil
}

func (d *fakeDriver) Destroy(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recordLocked("destroy %s", id)
	t, ok := d.tasks[id]
	if !ok {
		return nil
	}
	if t.running() {
		return fmt.Errorf("task %s is running", id)
	}
	delete(d.tasks, id)
	return nil
}

func (d *fakeDriver) Inspect(ctx context.Context, id string) (*TaskStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.get(id)
	if err != nil {
		return nil, err
	}
	st := &TaskStatus{ID: id, PID: t.h.PID, StartedAt: t.h.StartedAt, State: TaskRunning}
	if !t.running() {
		res := *t.exit
		st.State, st.Exit, st.FinishedAt = TaskExited, &res, res.FinishedAt
	}
	return st, nil
}

func (d *fakeDriver) Exec(ctx context.Context, id string, opts ExecOptions) (int, error) {
	d.mu.Lock()
	d.recordLocked("exec %s %s", id, strings.Join(opts.Command, " "))
	t, err := d.get(id)
	fn := d.exec
	d.mu.Unlock()
	if err != nil {
		return -1, err
	}
	if !t.running() {
		return -1, errors.New("task is not running")
	}
	if opts.Stdout != nil {
		fmt.Fprintf(opts.Stdout, "ran %s\n", strings.Join(opts.Command, " "))
	}
	if fn == nil {
		return 0, nil
	}
	return fn(id, opts.Command), nil
}

func (d *fakeDriver) Logs(ctx context.Context, id string, opts LogOptions, w io.Writer) error {
	d.mu.Lock()
	_, err := d.get(id)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "log of %s\n", id)
	return err
}

func (d *fakeDriver) Recover(ctx context.Context, h *TaskHandle) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recordLocked("recover %s", h.ID)
	t, err := d.get(h.ID)
	if err != nil {
		return err
	}
	if t.h.PID != h.PID || h.State["k"] != "v" {
		return fmt.Errorf("handle of %s does not match the task", h.ID)
	}
	return nil
}

func (d *fakeDriver) Tasks(ctx context.Context) ([]*TaskHandle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*TaskHandle
	for _, t := range d.tasks {
		h := t.h
		out = append(out, &h)
	}
	return out, nil
}

func (d *fakeDriver) ReleaseSandbox(ctx context.Context, podUID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recordLocked("release %s", podUID)
	return nil
}

// Test controls.

// exitTask ends a running task as if its process exited.
func (d *fakeDriver) exitTask(t *testing.T, id string, code int, oom bool) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	task, err := d.get(id)
	if err != nil {
		t.Fatal(err)
	}
	if !task.running() {
		t.Fatalf("task %s is not running", id)
	}
	d.exitLocked(task, ExitResult{Code: code, OOMKilled: oom})
}

func (d *fakeDriver) setExec(fn func(taskID string, cmd []string) int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.exec = fn
}

func (d *fakeDriver) setPullErr(image string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pullErr[image] = err
}

// callList returns the calls so far.
func (d *fakeDriver) callList() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// count returns how many calls start with prefix.
func (d *fakeDriver) count(prefix string) int {
	n := 0
	for _, c := range d.callList() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// waitCall waits until a call starting with prefix has been made n times in all.
func (d *fakeDriver) waitCalls(t *testing.T, prefix string, n int) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		d.mu.Lock()
		got := 0
		for _, c := range d.calls {
			if strings.HasPrefix(c, prefix) {
				got++
			}
		}
		ch := d.changed
		d.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waiting for %d calls %q; calls so far:\n%s", n, prefix, strings.Join(d.callList(), "\n"))
		}
	}
}

// task returns the task with id, or nil.
func (d *fakeDriver) task(id string) *fakeTask {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tasks[id]
}

// taskConfig returns the config a task was started with.
func (d *fakeDriver) taskConfig(t *testing.T, id string) *TaskConfig {
	t.Helper()
	task := d.task(id)
	if task == nil {
		t.Fatalf("no task %s; calls:\n%s", id, strings.Join(d.callList(), "\n"))
	}
	return task.cfg
}
