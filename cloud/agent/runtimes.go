package agent

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// A node runs pods through several drivers: containers through Config.Driver, and
// the pods whose runtimeClassName names another runtime (an instance's launcher pod:
// api.RuntimeClassVM) through Config.Runtimes. Each pod worker holds the one driver
// of its pod; handles record the driver's name so that the tasks of a pod deleted
// while the agent was down go back to the driver that ran them.

// drivers lists the node's drivers, the container driver first.
func (a *Agent) drivers() []Driver {
	ds := []Driver{a.cfg.Driver}
	for _, d := range a.cfg.Runtimes {
		ds = append(ds, d)
	}
	return ds
}

// driverNamed is the driver whose Name is name, or nil; "" is the container driver
// (handles written before drivers were named).
func (a *Agent) driverNamed(name string) Driver {
	for _, d := range a.drivers() {
		if name == "" || d.Name() == name {
			return d
		}
	}
	return nil
}

// podDriver picks the driver of a pod from what is known of it: the pod's
// runtimeClassName, else the record's, else the name on its tasks' handles.
func (a *Agent) podDriver(p *api.Pod, rec *podRecord, adopted []*TaskHandle) Driver {
	runtime, known := "", false
	switch {
	case p != nil:
		runtime, known = p.Spec.RuntimeClassName, true
	case rec != nil:
		runtime, known = rec.Runtime, true
	}
	if !known || runtime == "" && p == nil {
		for _, h := range adopted {
			if d := a.driverNamed(h.Driver); d != nil {
				return d
			}
		}
	}
	if runtime == "" {
		return a.cfg.Driver
	}
	if d, ok := a.cfg.Runtimes[runtime]; ok {
		return d
	}
	return unsupportedRuntime{runtime: runtime, node: a.cfg.NodeName}
}

// unsupportedRuntime stands in for the driver of a runtime class this node does not
// have: the pod's containers fail to start with a message that says so.
type unsupportedRuntime struct{ runtime, node string }

func (u unsupportedRuntime) err() error {
	return fmt.Errorf("runtime class %q is not available on node %s", u.runtime, u.node)
}

func (u unsupportedRuntime) Name() string { return "unsupported:" + u.runtime }
func (u unsupportedRuntime) PullImage(context.Context, string, string) (string, error) {
	return "", u.err()
}
func (u unsupportedRuntime) Start(context.Context, *TaskConfig) (*TaskHandle, error) {
	return nil, u.err()
}
func (u unsupportedRuntime) Wait(context.Context, string) (*ExitResult, error) { return nil, u.err() }
func (u unsupportedRuntime) Stop(context.Context, string, time.Duration) error { return nil }
func (u unsupportedRuntime) Destroy(context.Context, string) error             { return nil }
func (u unsupportedRuntime) Inspect(_ context.Context, id string) (*TaskStatus, error) {
	return &TaskStatus{ID: id, State: TaskUnknown}, nil
}
func (u unsupportedRuntime) Exec(context.Context, string, ExecOptions) (int, error) {
	return -1, u.err()
}
func (u unsupportedRuntime) Logs(context.Context, string, LogOptions, io.Writer) error {
	return u.err()
}
func (u unsupportedRuntime) Recover(context.Context, *TaskHandle) error   { return u.err() }
func (u unsupportedRuntime) Tasks(context.Context) ([]*TaskHandle, error) { return nil, nil }
func (u unsupportedRuntime) ReleaseSandbox(context.Context, string) error { return nil }

// allTasks lists the tasks of every driver of the node.
func (a *Agent) allTasks(ctx context.Context) ([]*TaskHandle, error) {
	var all []*TaskHandle
	for _, d := range a.drivers() {
		tasks, err := d.Tasks(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s driver: %w", d.Name(), err)
		}
		all = append(all, tasks...)
	}
	return all, nil
}
