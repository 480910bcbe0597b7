package container

import (
	"os"
	"syscall"
	"time"
)

// Exit reasons, as Kubernetes names them in a terminated container state.
const (
	ReasonCompleted = "Completed" // exit code 0
	ReasonError     = "Error"     // any other code, or a signal
	ReasonOOMKilled = "OOMKilled" // the cgroup's OOM killer killed a process
	// ReasonUnknown: the container's init exited while it was not a child
	// of this process (it was started by an agent that has since exited),
	// so its exit code could not be read; Code is then 255.
	ReasonUnknown = "Unknown"
)

// unknownExitCode is what containerd reports for a task whose exit status
// was lost; non-zero, so restart policies and Jobs treat it as a failure.
const unknownExitCode = 255

// ExitStatus is how a container's init process ended.
type ExitStatus struct {
	// Code is the exit code, or 128+signal when a signal killed the
	// process (libcontainer reports -1 then), as shells and Docker do.
	Code int `json:"code"`
	// Signal is the signal that killed the process, 0 if it exited.
	Signal syscall.Signal `json:"signal,omitempty"`
	// OOMKilled is true when the kernel's OOM killer killed a process of
	// the container's cgroup and the container did not exit 0 (a shell
	// whose child was OOM-killed reports 137 itself).
	OOMKilled bool `json:"oomKilled,omitempty"`
	// StartedAt is when Start released the process; zero if it never ran.
	StartedAt time.Time `json:"startedAt"`
	// FinishedAt is when the exit was noticed.
	FinishedAt time.Time `json:"finishedAt"`
	// Reason is ReasonCompleted, ReasonError, ReasonOOMKilled or
	// ReasonUnknown.
	Reason string `json:"reason"`
}

// exitFromProcessState converts what wait4 returned.
func exitFromProcessState(ps *os.ProcessState) ExitStatus {
	if ps == nil {
		return ExitStatus{Code: unknownExitCode, Reason: ReasonUnknown}
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return ExitStatus{Code: ps.ExitCode()}
	}
	return exitFromWaitStatus(ws)
}

func exitFromWaitStatus(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// finish fills the reason once the code and OOM kill count are known.
func (e *ExitStatus) finish(oomKills uint64) {
	if e.Reason == ReasonUnknown {
		// The code is lost but the cgroup still counts OOM kills.
		e.OOMKilled = oomKills > 0
		return
	}
	e.OOMKilled = oomKills > 0 && e.Code != 0
	switch {
	case e.OOMKilled:
		e.Reason = ReasonOOMKilled
	case e.Code == 0:
		e.Reason = ReasonCompleted
	default:
		e.Reason = ReasonError
	}
}
