package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// record is what the Manager persists per container, beside libcontainer's
// own state.json, so that a restarted agent knows the spec, where the
// rootfs and log are, when the container started and how it ended.
type record struct {
	Spec         Spec              `json:"spec"` // Files left out: they are on disk already
	Env          []string          `json:"env"`  // the init's environment, defaults added; Exec starts from it
	Rootfs       string            `json:"rootfs"`
	Overlay      bool              `json:"overlay,omitempty"` // Rootfs is our overlay mount
	LogPath      string            `json:"logPath"`
	CgroupPath   string            `json:"cgroupPath"`
	CgroupPaths  map[string]string `json:"cgroupPaths,omitempty"`
	Pid          int               `json:"pid"`
	PidStartTime uint64            `json:"pidStartTime"`
	CreatedAt    time.Time         `json:"createdAt"`
	StartedAt    time.Time         `json:"startedAt"`
	Exit         *ExitStatus       `json:"exit,omitempty"`
}

const recordFile = "container.json"

// saveRecord writes the record atomically (temp file + rename). It is not
// fsynced: what it describes (running processes, mounts) does not survive
// a power loss either, and an fsync would add milliseconds to every start.
func saveRecord(dir string, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, recordFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, recordFile))
}

func loadRecord(dir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %s: %w", filepath.Base(dir), ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("container %s: corrupt %s: %w", filepath.Base(dir), recordFile, err)
	}
	return &r, nil
}
