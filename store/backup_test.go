package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestBackupRestore(t *testing.T) {
	s, _ := openTest(t, Options{})
	for i := range 10 {
		mustCreate(t, s, pods, newPod("default", fmt.Sprint("p", i)))
	}
	mustCreate(t, s, namespaces, newNamespace("default"))
	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("Backup = %d, %v (wrote %d)", n, err, buf.Len())
	}
	// A write after the backup is not in it.
	mustCreate(t, s, pods, newPod("default", "later"))

	dir := t.TempDir()
	backup := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(backup, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(dir, "data", "cloudbox.db")
	// Restoring over an existing store replaces it.
	r := openAt(t, restored, Options{})
	mustCreate(t, r, pods, newPod("default", "old"))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Restore(restored, backup); err != nil {
		t.Fatal(err)
	}

	r = openAt(t, restored, Options{})
	if r.Revision() != 11 {
		t.Fatalf("restored revision = %d, want 11", r.Revision())
	}
	for _, k := range []string{"pods", "namespaces"} {
		want, err := s.List(context.Background(), mustKind(k), ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.List(context.Background(), mustKind(k), ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want.Items = slices.DeleteFunc(want.Items, func(o api.Object) bool { return o.GetObjectMeta().Name == "later" })
		if !reflect.DeepEqual(got.Items, want.Items) {
			t.Fatalf("%s: restored %v, want %v", k, names(got.Items), names(want.Items))
		}
	}
	// The restored event log resumes watches from before the backup.
	ch, err := r.Watch(t.Context(), pods, WatchOptions{FromRevision: 9})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Revision != 10 {
		t.Fatalf("event %+v", ev)
	}
	if entries, _ := os.ReadDir(filepath.Dir(restored)); len(entries) != 1 {
		t.Fatalf("restore left files behind: %v", entries)
	}
}

func TestRestoreRefuses(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a bolt file "), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A bbolt file, but not a store: no meta bucket.
	foreign := filepath.Join(dir, "foreign.db")
	db, err := bbolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// A store from a future schema.
	future := filepath.Join(dir, "future.db")
	s := openAt(t, future, Options{})
	s.Close()
	setSchema(t, future, schemaVersion()+1)

	target := filepath.Join(dir, "target.db")
	for _, backup := range []string{garbage, empty, foreign, future, filepath.Join(dir, "missing")} {
		t.Run(filepath.Base(backup), func(t *testing.T) {
			if err := Restore(target, backup); err == nil {
				t.Fatal("Restore accepted it")
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Fatalf("target was written: %v", err)
			}
		})
	}
}

func TestRestoreRefusesRunningStore(t *testing.T) {
	s, path := openTest(t, Options{})
	var buf bytes.Buffer
	if _, err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(backup, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Restore(path, backup); !errors.Is(err, ErrLocked) {
		t.Fatalf("Restore onto an open store = %v, want ErrLocked", err)
	}
}

func TestOpenLocked(t *testing.T) {
	_, path := openTest(t, Options{})
	start := time.Now()
	_, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if want := "data dir is locked: is another cloudbox using " + filepath.Dir(path) + "?"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second Open took %v", d)
	}
	if !strings.Contains(err.Error(), "another cloudbox") {
		t.Fatal(err)
	}
}

// setSchema rewrites a closed store's schema version.
func setSchema(t *testing.T, path string, v int) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error { return putUint(tx.Bucket(bucketMeta), keySchema, uint64(v)) }); err != nil {
		t.Fatal(err)
	}
}
