package store

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// Bucket and key names; doc.go draws the tree.
var (
	bucketMeta    = []byte("meta")
	bucketObjects = []byte("objects")
	bucketEvents  = []byte("events")

	keySchema    = []byte("schema")
	keyRevision  = []byte("revision")
	keyCompacted = []byte("compacted")
)

// migration moves the file from schema version-1 to version. Migrations are code, not
// data: each is written once, never edited after release, and has a test of its own.
type migration struct {
	version int
	name    string
	fn      func(tx *bbolt.Tx) error
}

// migrations is every schema change in order. Versions start at 1 and have no gaps;
// TestMigrationsOrdered holds that.
var migrations = []migration{
	{version: 1, name: "create the meta, objects and events buckets", fn: createBaseBuckets},
}

// schemaVersion is the version this binary writes.
func schemaVersion() int { return migrations[len(migrations)-1].version }

func createBaseBuckets(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketObjects, bucketEvents} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	return nil
}

// storedSchema is the version recorded in the file; a file without a meta bucket is
// new (version 0).
func storedSchema(tx *bbolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v, err := getUint(meta, keySchema)
	return int(v), err
}

// migrate runs, inside tx, every migration of ms above the file's version, so that a
// crash part way leaves the file at its old version rather than half migrated. It
// refuses a file newer than ms knows: an older binary must not write a newer schema.
func migrate(tx *bbolt.Tx, ms []migration) (from, to int, err error) {
	from, err = storedSchema(tx)
	if err != nil {
		return 0, 0, err
	}
	latest := ms[len(ms)-1].version
	if from > latest {
		return from, from, fmt.Errorf("data file has schema version %d, newer than this cloudbox understands (%d): use a newer cloudbox or restore a backup", from, latest)
	}
	to = from
	for _, m := range ms {
		if m.version <= from {
			continue
		}
		if err := m.fn(tx); err != nil {
			return from, to, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return from, to, fmt.Errorf("migration %d (%s) left no meta bucket", m.version, m.name)
		}
		if err := putUint(meta, keySchema, uint64(m.version)); err != nil {
			return from, to, err
		}
		to = m.version
	}
	return from, to, nil
}
