package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/cloudbox/cloudbox/internal/logfollow"
)

// Logs. The container's stdout and stderr are one file, LogRoot/<id>.log,
// opened O_APPEND by the Manager and handed to the container's init as fds
// 1 and 2; the container writes it directly. Nothing passes through this
// process, so the container neither blocks nor dies when the agent stops,
// and there is no per-container copier. The price: lines are raw, not in
// the CRI format ("<RFC3339Nano> stdout F <line>"), stdout and stderr are
// interleaved in one file and cannot be told apart, and there are no
// timestamps. (A FIFO with a reader in the agent could add them, but the
// container would block once the FIFO filled while the agent is away.)
//
// Rotation is done from the Manager's side, since the container holds the
// file open: when the file passes LogMaxBytes, its content is copied to
// <id>.log.1 (older files shift to .2 ... .LogMaxFiles, the oldest is
// dropped) and then removed from the head of the live file with
// fallocate(FALLOC_FL_COLLAPSE_RANGE), which keeps whatever the container
// appended meanwhile. Collapse works in whole filesystem blocks (ext4 and
// xfs), so the rotated file ends on a block boundary and the line cut there
// continues in the live file; Logs joins them again. Where collapse is not
// supported (tmpfs, overlayfs) the file is truncated instead (copytruncate)
// and what the container wrote between the copy and the truncate is lost.
// Because the fd is O_APPEND, the container's next write lands at the new
// end of file either way, without leaving a hole.

func (m *Manager) logPath(id string) string { return filepath.Join(m.cfg.LogRoot, id+".log") }

func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o640)
}

func rotatedPath(path string, n int) string { return path + "." + strconv.Itoa(n) }

// removeLogs removes a container's log files, rotated ones included.
func removeLogs(path string, keep int) {
	_ = os.Remove(path)
	for i := 1; i <= keep+1; i++ {
		_ = os.Remove(rotatedPath(path, i))
	}
}

// rotateLoop checks the logs of running containers every
// LogCheckInterval until Close.
func (m *Manager) rotateLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.LogCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		m.mu.Lock()
		cs := make([]*ctr, 0, len(m.ctrs))
		for _, c := range m.ctrs {
			if !c.exited() {
				cs = append(cs, c)
			}
		}
		m.mu.Unlock()
		for _, c := range cs {
			if err := m.rotateLog(c); err != nil {
				m.log.Warn("rotating log", zap.String("container", c.id), zap.Error(err))
			}
		}
	}
}

// rotateLog rotates c's log if it is past LogMaxBytes.
func (m *Manager) rotateLog(c *ctr) error {
	path := m.logPath(c.id)
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size < m.cfg.LogMaxBytes {
		return nil
	}
	var st unix.Statfs_t
	block := int64(4096)
	if err := unix.Fstatfs(int(f.Fd()), &st); err == nil && st.Bsize > 0 {
		block = st.Bsize
	}
	// Collapse takes whole blocks and must stop short of the end of file.
	cut := size - size%block
	if cut == size {
		cut -= block
	}

	keep := m.cfg.LogMaxFiles
	_ = os.Remove(rotatedPath(path, keep))
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(rotatedPath(path, i), rotatedPath(path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	tmp := rotatedPath(path, 1) + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	defer out.Close()
	copied := int64(0)
	if cut > 0 {
		if copied, err = io.Copy(out, io.NewSectionReader(f, 0, cut)); err != nil {
			return err
		}
		if unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, cut) == nil {
			c.logBase.Add(cut)
			return os.Rename(tmp, rotatedPath(path, 1))
		}
	}
	// No collapse here: copy the rest and truncate.
	n, err := io.Copy(out, io.NewSectionReader(f, copied, 1<<62))
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("truncate %s: %w", path, err)
	}
	c.logBase.Add(copied + n)
	return os.Rename(tmp, rotatedPath(path, 1))
}

// Logs writes the container's log to w: the rotated files oldest first,
// then the live file. With follow, it keeps writing what the container
// appends until the container has exited (and everything is written) or
// ctx is done. Output is the raw bytes the container wrote (see the note
// on logs above). It works for containers not recovered yet, without follow.
func (m *Manager) Logs(ctx context.Context, id string, follow bool, w io.Writer) error {
	if err := validateID(id); err != nil {
		return err
	}
	c, _ := m.get(id)
	path := m.logPath(id)
	if c == nil {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("container %s: %w", id, ErrNotFound)
		}
	}
	for i := m.cfg.LogMaxFiles; i >= 1; i-- {
		if err := copyFile(w, rotatedPath(path, i)); err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var base int64
	if c != nil {
		base = c.logBase.Load()
	}
	pos := int64(0) // read position in the live file
	buf := make([]byte, 32<<10)
	readAll := func() error {
		if c != nil {
			if nb := c.logBase.Load(); nb != base {
				// Rotation moved nb-base bytes out of the head; anything
				// before that which we had not read went to .1 (dropped here).
				pos = max(pos-(nb-base), 0)
				base = nb
			}
		}
		for {
			n, err := f.ReadAt(buf, pos)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return werr
				}
				pos += int64(n)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	if !follow || c == nil {
		return readAll()
	}
	return logfollow.File(ctx, f, c.done, readAll)
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
