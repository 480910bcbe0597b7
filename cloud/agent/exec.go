package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Errors of Logs and Exec, for the API edge to turn into statuses.
var (
	// ErrNotFound: no such pod on this node, container, or previous attempt.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request cannot be served as asked (no container named in a pod
	// of several, a container that is not running).
	ErrInvalid = errors.New("invalid request")
)

// Logs copies the output of a container of a pod bound to this node to w: its
// current task, or with opts.Previous the one before. container may be empty for a
// pod of one container.
func (a *Agent) Logs(ctx context.Context, namespace, pod, container string, opts LogOptions, w io.Writer) error {
	id, _, d, err := a.resolveTask(namespace, pod, container, opts.Previous)
	if err != nil {
		return err
	}
	return d.Logs(ctx, id, opts, w)
}

// Exec runs a command in a running container of a pod bound to this node and returns
// its exit code.
func (a *Agent) Exec(ctx context.Context, namespace, pod, container string, opts ExecOptions) (int, error) {
	id, running, d, err := a.resolveTask(namespace, pod, container, false)
	if err != nil {
		return -1, err
	}
	if !running {
		return -1, fmt.Errorf("container %q of pod %s/%s is not running (its last task %s ended): %w", container, namespace, pod, id, ErrInvalid)
	}
	return d.Exec(ctx, id, opts)
}

// resolveTask finds the task ID of a container's current (or previous) attempt.
func (a *Agent) resolveTask(namespace, pod, container string, previous bool) (id string, running bool, d Driver, err error) {
	if a.pods == nil {
		return "", false, nil, fmt.Errorf("pod %s/%s: this node runs no workloads: %w", namespace, pod, ErrNotFound)
	}
	w := a.pods.find(namespace, pod)
	if w == nil {
		return "", false, nil, fmt.Errorf("pod %s/%s on node %s: %w", namespace, pod, a.cfg.NodeName, ErrNotFound)
	}
	w.mu.Lock()
	idx := w.index
	w.mu.Unlock()
	if container == "" {
		// As kubectl chooses: the only container, init containers not counted.
		if len(idx.containers) != 1 {
			return "", false, nil, fmt.Errorf("a container name must be given for pod %s/%s, one of [%s]: %w", namespace, pod, strings.Join(idx.containers, " "), ErrInvalid)
		}
		container = idx.containers[0]
	}
	r, ok := idx.tasks[container]
	if !ok {
		return "", false, nil, fmt.Errorf("container %q is not in pod %s/%s: %w", container, namespace, pod, ErrNotFound)
	}
	if previous {
		if r.previous == "" {
			return "", false, nil, fmt.Errorf("previous terminated container %q in pod %s/%s: %w", container, namespace, pod, ErrNotFound)
		}
		return r.previous, false, idx.driver, nil
	}
	if r.current == "" {
		reason := r.waiting
		if reason == "" {
			reason = reasonContainerCreating
		}
		return "", false, nil, fmt.Errorf("container %q in pod %s/%s is waiting to start (%s): %w", container, namespace, pod, reason, ErrInvalid)
	}
	return r.current, r.running, idx.driver, nil
}
