package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cloudbox/cloudbox/internal/atomicfile"
)

// restoreLockTimeout is how long Restore waits for the data file's lock. It is short:
// a running cloudbox holds the lock for as long as it runs, so waiting longer only
// delays the error.
const restoreLockTimeout = 500 * time.Millisecond

// Backup writes a consistent copy of the whole store file to w. It reads in one bbolt
// read transaction, so writes go on while it runs and are not in the copy.
func (b *Bolt) Backup(w io.Writer) (int64, error) {
	var n int64
	err := b.view(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup: %w", err)
	}
	return n, nil
}

// Restore replaces the store file dataFile with the backup at backupFile, for a store
// that is not running: if a process holds dataFile it fails with an error wrapping
// ErrLocked. The backup must be a consistent bbolt file with a meta bucket and a
// schema version this binary can read (an older one is migrated at the next Open).
// The copy is written to a temporary file beside dataFile, fsynced and renamed over
// dataFile, so a crash leaves the old store or the new one, never a mix.
func Restore(dataFile, backupFile string) error {
	src, err := bbolt.Open(backupFile, 0o600, &bbolt.Options{ReadOnly: true, Timeout: restoreLockTimeout})
	if err != nil {
		return fmt.Errorf("store: restore: %s is not a cloudbox backup: %w", backupFile, err)
	}
	defer src.Close()

	dir := filepath.Dir(dataFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	unlock, err := lockFile(dataFile, restoreLockTimeout)
	if err != nil {
		return err
	}
	defer unlock()

	tmp, err := os.CreateTemp(dir, filepath.Base(dataFile)+".restore-*")
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	err = src.View(func(tx *bbolt.Tx) error {
		if err := checkBackup(tx); err != nil {
			return fmt.Errorf("%s is not a usable cloudbox backup: %w", backupFile, err)
		}
		_, err := tx.WriteTo(tmp)
		return err
	})
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dataFile)
	}
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	renamed = true
	// The rename is durable only once the directory is.
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	return nil
}

// checkBackup accepts a file Open can use: a meta bucket, a schema version from 1 to
// this binary's, sane counters, and no structural damage (bbolt's own page check).
func checkBackup(tx *bbolt.Tx) error {
	if tx.Bucket(bucketMeta) == nil {
		return errors.New("no meta bucket")
	}
	v, err := storedSchema(tx)
	if err != nil {
		return err
	}
	if v < 1 || v > schemaVersion() {
		return fmt.Errorf("schema version %d; this cloudbox reads 1 to %d", v, schemaVersion())
	}
	if _, _, err := readCounters(tx); err != nil {
		return err
	}
	// Check reports through a channel; drain it all so its goroutine can end.
	var first error
	for err := range tx.Check() {
		if first == nil {
			first = err
		}
	}
	return first
}

// lockFile takes the same exclusive flock bbolt takes on a store file, so that Restore
// cannot replace the file under a running cloudbox. A missing file needs no lock.
func lockFile(path string, timeout time.Duration) (unlock func(), err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: restore: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("store: restore: lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: is another cloudbox using %s?", ErrLocked, filepath.Dir(path))
		}
		// flock has no timeout of its own; poll as bbolt does.
		time.Sleep(50 * time.Millisecond)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
