package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/internal/atomicfile"
)

// The agent's state directory:
//
//	StateDir/
//	  pods/<pod uid>/
//	    pod.json            the podRecord: task handles and how they ended
//	    volumes/<name>/     emptyDir, configMap and secret volumes
//
// pod.json is replaced atomically (write, fsync, rename, fsync the directory), so
// after a crash it holds either the old or the new record, never a torn one.

// podRecord is what the agent keeps of a pod across its own restarts.
type podRecord struct {
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Runtime is the pod's runtimeClassName, so that a pod deleted while the agent
	// was down is cleaned up by the driver that ran it.
	Runtime    string                      `json:"runtime,omitempty"`
	Containers map[string]*containerRecord `json:"containers"`
}

// containerRecord is one container's tasks: the current attempt and the one before
// (kept for `logs --previous`), and how they ended.
type containerRecord struct {
	Init bool `json:"init,omitempty"`
	// Attempt is the attempt number of Current; the next start uses Attempt+1.
	Attempt  int         `json:"attempt"`
	Current  *TaskHandle `json:"current,omitempty"`
	Previous *TaskHandle `json:"previous,omitempty"`
	// Image and ImageID are what Current was started from.
	Image        string `json:"image,omitempty"`
	ImageID      string `json:"imageID,omitempty"`
	RestartCount int32  `json:"restartCount"`
	// Terminated is how Current ended, once the agent saw it end.
	Terminated *api.ContainerStateTerminated `json:"terminated,omitempty"`
	// LastTermination is how Previous ended: the status's lastState.
	LastTermination *api.ContainerStateTerminated `json:"lastTermination,omitempty"`
}

// succeeded reports whether the current attempt ended with exit code 0.
func (r *containerRecord) succeeded() bool {
	return r.Terminated != nil && r.Terminated.ExitCode == 0
}

func (a *Agent) podsDir() string { return filepath.Join(a.cfg.StateDir, "pods") }

// podDir is where a pod's record and volumes live.
func (a *Agent) podDir(uid string) string { return filepath.Join(a.podsDir(), uid) }

// validUID keeps a pod UID from naming a path outside the state directory.
func validUID(uid string) bool {
	return uid != "" && uid != "." && uid != ".." && !strings.ContainsAny(uid, `/\`) && !strings.HasPrefix(uid, ".")
}

// saveRecord writes rec atomically.
func (a *Agent) saveRecord(rec *podRecord) error {
	if !validUID(rec.UID) {
		return fmt.Errorf("pod uid %q is not usable as a directory name", rec.UID)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	dir := a.podDir(rec.UID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "pod.json"), b, 0o600)
}

// loadRecord reads a pod's record; a pod without one gets nil and no error.
func (a *Agent) loadRecord(uid string) (*podRecord, error) {
	b, err := os.ReadFile(filepath.Join(a.podDir(uid), "pod.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec podRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(a.podDir(uid), "pod.json"), err)
	}
	if rec.Containers == nil {
		rec.Containers = map[string]*containerRecord{}
	}
	return &rec, nil
}

// recordedPods lists the UIDs that have a directory in the state directory.
func (a *Agent) recordedPods() ([]string, error) {
	ents, err := os.ReadDir(a.podsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var uids []string
	for _, e := range ents {
		if e.IsDir() && validUID(e.Name()) {
			uids = append(uids, e.Name())
		}
	}
	return uids, nil
}

// removePodDir deletes the record and the volumes of a pod whose tasks are gone.
func (a *Agent) removePodDir(uid string) error {
	if !validUID(uid) {
		return nil
	}
	return os.RemoveAll(a.podDir(uid))
}
