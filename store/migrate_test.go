package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

func TestMigrationsOrdered(t *testing.T) {
	for i, m := range migrations {
		if m.version != i+1 {
			t.Fatalf("migration %d (%s) has version %d, want %d", i, m.name, m.version, i+1)
		}
		if m.name == "" || m.fn == nil {
			t.Fatalf("migration %d lacks a name or a function", m.version)
		}
	}
}

// migrateTo runs the migrations up to version v on a new file and returns it open.
func migrateTo(t *testing.T, v int) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "m.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error { _, _, err := migrate(tx, migrations[:v]); return err }); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMigration1BaseBuckets(t *testing.T) {
	db := migrateTo(t, 1)
	err := db.View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketObjects, bucketEvents} {
			if tx.Bucket(b) == nil {
				t.Errorf("no %s bucket", b)
			}
		}
		if v, err := storedSchema(tx); err != nil || v != 1 {
			t.Errorf("schema = %d, %v; want 1", v, err)
		}
		rev, compacted, err := readCounters(tx)
		if err != nil || rev != 0 || compacted != 0 {
			t.Errorf("counters = %d, %d, %v", rev, compacted, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateRunsOnlyNewer checks the runner: only migrations above the stored version
// run, in order, in the caller's transaction; a failure rolls everything back.
func TestMigrateRunsOnlyNewer(t *testing.T) {
	db := migrateTo(t, len(migrations))
	base := schemaVersion()
	var ran []int
	step := func(v int) migration {
		return migration{version: v, name: "test", fn: func(tx *bbolt.Tx) error {
			ran = append(ran, v)
			_, err := tx.CreateBucket([]byte{byte('a' + v)})
			return err
		}}
	}
	ms := append(append([]migration{}, migrations...), step(base+1), step(base+2))
	var from, to int
	if err := db.Update(func(tx *bbolt.Tx) (err error) { from, to, err = migrate(tx, ms); return err }); err != nil {
		t.Fatal(err)
	}
	if from != base || to != base+2 || len(ran) != 2 || ran[0] != base+1 || ran[1] != base+2 {
		t.Fatalf("from %d to %d, ran %v", from, to, ran)
	}

	// Nothing to do the second time.
	ran = nil
	if err := db.Update(func(tx *bbolt.Tx) (err error) { _, _, err = migrate(tx, ms); return err }); err != nil || len(ran) != 0 {
		t.Fatalf("second run: ran %v, %v", ran, err)
	}

	// A failing migration leaves the file at its old version.
	boom := errors.New("boom")
	failing := append(ms, step(base+3), migration{version: base + 4, name: "fails", fn: func(*bbolt.Tx) error { return boom }})
	err := db.Update(func(tx *bbolt.Tx) error { _, _, err := migrate(tx, failing); return err })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		if v, _ := storedSchema(tx); v != base+2 {
			t.Errorf("schema after a failed migration = %d, want %d", v, base+2)
		}
		if tx.Bucket([]byte{byte('a' + base + 3)}) != nil {
			t.Error("the failed run's first migration was kept")
		}
		return nil
	})
}

func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloudbox.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	setSchema(t, path, schemaVersion()+1)
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer than this cloudbox") {
		t.Fatalf("Open of a newer schema = %v", err)
	}
}
