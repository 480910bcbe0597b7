package vmdriver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/internal/logfollow"
)

// ConsoleCommand is the one "command" a VM runs through exec: an interactive session
// on its serial console (what `cloudbox vm console` asks for).
const ConsoleCommand = "console"

// Exec attaches opts' streams to the VM's serial console until the client goes away
// (its stdin ends) or the VM exits. QEMU serves one console client at a time.
func (d *Driver) Exec(ctx context.Context, id string, opts agent.ExecOptions) (int, error) {
	if len(opts.Command) != 1 || opts.Command[0] != ConsoleCommand {
		return -1, fmt.Errorf("a VM runs no commands: exec %q is not possible; `cloudbox vm console NAME` attaches to its serial console", ConsoleCommand)
	}
	t, err := d.lookup(ctx, id)
	if err != nil {
		return -1, err
	}
	if t.vm == nil {
		return -1, errors.New("the VM is not running")
	}
	conn, err := t.vm.DialConsole(ctx)
	if err != nil {
		return -1, fmt.Errorf("serial console: %w", err)
	}
	defer conn.Close()
	ended := make(chan struct{}, 2)
	if opts.Stdout != nil {
		go func() { _, _ = io.Copy(opts.Stdout, conn); ended <- struct{}{} }()
	}
	if opts.Stdin != nil {
		go func() { _, _ = io.Copy(conn, opts.Stdin); ended <- struct{}{} }()
	}
	select {
	case <-ended:
	case <-t.done:
	case <-ctx.Done():
	}
	return 0, nil
}

// Logs copies the VM's serial console log: everything QEMU wrote since the instance
// was created, across its runs.
func (d *Driver) Logs(ctx context.Context, id string, opts agent.LogOptions, w io.Writer) error {
	t, err := d.lookup(ctx, id)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(t.dir, "console.log"))
	if errors.Is(err, os.ErrNotExist) && !opts.Follow {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if opts.Tail >= 0 {
		if err := seekTail(f, opts.Tail); err != nil {
			return err
		}
	}
	copyNew := func() error { _, err := io.Copy(w, f); return err }
	if !opts.Follow {
		return copyNew()
	}
	// Follow: copy what QEMU appends until the VM ends or the reader goes away (which
	// is no error).
	err = logfollow.File(ctx, f, t.done, copyNew)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// seekTail positions f at the start of its last n lines.
func seekTail(f *os.File, n int) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	const chunk = 64 << 10
	size := st.Size()
	if n == 0 {
		_, err := f.Seek(0, io.SeekEnd)
		return err
	}
	off := size
	lines := 0
	buf := make([]byte, chunk)
	for off > 0 {
		step := int64(chunk)
		if off < step {
			step = off
		}
		off -= step
		if _, err := f.ReadAt(buf[:step], off); err != nil && err != io.EOF {
			return err
		}
		b := buf[:step]
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' || off+int64(i) == size-1 {
				continue
			}
			lines++
			if lines == n {
				_, err := f.Seek(off+int64(i)+1, io.SeekStart)
				return err
			}
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// ConsoleLog copies the last tail lines (negative: all) of the serial console log of
// the instance with this UID, whether or not it runs: a stopped or failed VM keeps
// its log, as Nova's does, until the instance is deleted and its directory swept.
// It does not follow; a running VM's log is followed through its launcher pod.
func (d *Driver) ConsoleLog(uid string, tail int, w io.Writer) error {
	id := shortID(uid)
	if id == "" || strings.Trim(id, "0123456789abcdefABCDEF") != "" {
		return fmt.Errorf("instance UID %q: %w", uid, agent.ErrInvalid)
	}
	f, err := os.Open(filepath.Join(d.instanceDir(uid), "console.log"))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no console log of instance %s on node %s (it never started here, or it was deleted): %w", uid, d.cfg.NodeName, agent.ErrNotFound)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if tail >= 0 {
		if err := seekTail(f, tail); err != nil {
			return err
		}
	}
	_, err = io.Copy(w, f)
	return err
}
