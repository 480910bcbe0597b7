package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// ErrClosed is returned by calls on a store that has been closed.
var ErrClosed = errors.New("store is closed")

var _ Store = (*Bolt)(nil)

// Defaults for the zero Options.
const (
	DefaultTimeout      = time.Second
	DefaultEventHistory = 10000
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Timeout is how long Open waits for the data file's lock before it fails with
	// ErrLocked. Zero means DefaultTimeout.
	Timeout time.Duration
	// EventHistory is how many events the log keeps for watches to resume from;
	// older ones are compacted away and a watch from before them gets ErrGone. Zero
	// means DefaultEventHistory.
	EventHistory int
	// Logger receives the store's logs, under the name "store". Nil means no logs.
	Logger *zap.Logger
	// Sealer, if not nil, encrypts what is written to disk for the resources it
	// chooses (secrets), in the objects and in the event log alike. Watchers and
	// readers get plaintext.
	Sealer Sealer

	// ringSize is how many recent events are kept in memory for watchers; zero means
	// defaultRingSize. Tests shrink it to make watchers read the log on disk.
	ringSize int
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.EventHistory <= 0 {
		o.EventHistory = DefaultEventHistory
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.ringSize <= 0 {
		o.ringSize = defaultRingSize
	}
	return o
}

// Bolt is the Store on one bbolt file (doc.go draws its layout). It is safe for
// concurrent use. Reads run in bbolt read transactions of their own and never wait
// for a write's fsync; writes are serialised by one writer goroutine (write.go).
type Bolt struct {
	db      *bbolt.DB
	log     *zap.Logger
	history uint64
	hub     *hub

	// mu guards closed, so that no write is sent on queue, and no watcher is added,
	// after Close has begun.
	mu         sync.RWMutex
	closed     bool
	queue      chan *writeOp
	writerDone chan struct{}

	// closing is closed by Close to stop the watchers; watchers tracks them.
	closing  chan struct{}
	watchers sync.WaitGroup

	sealer Sealer

	// rev and compacted belong to the writer goroutine once Open returns.
	rev       uint64
	compacted uint64
}

// Open opens or creates the store file at path, migrates it to the current schema and
// starts the writer. If another process holds the file it fails after opts.Timeout
// with an error wrapping ErrLocked.
func Open(path string, opts Options) (*Bolt, error) {
	opts = opts.withDefaults()
	log := opts.Logger.Named("store")
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: is another cloudbox using %s?", ErrLocked, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	var from, to int
	var rev, compacted uint64
	err = db.Update(func(tx *bbolt.Tx) error {
		var err error
		if from, to, err = migrate(tx, migrations); err != nil {
			return err
		}
		rev, compacted, err = readCounters(tx)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if from != to {
		log.Info("migrated data file", zap.String("path", path), zap.Int("from", from), zap.Int("to", to))
	}
	log.Info("opened", zap.String("path", path), zap.Int("schema", to),
		zap.Uint64("revision", rev), zap.Uint64("compacted", compacted))

	b := &Bolt{
		db:         db,
		log:        log,
		sealer:     sealerOrNone(opts.Sealer),
		history:    uint64(opts.EventHistory),
		hub:        newHub(opts.ringSize, rev, compacted),
		queue:      make(chan *writeOp, maxBatch),
		writerDone: make(chan struct{}),
		closing:    make(chan struct{}),
		rev:        rev,
		compacted:  compacted,
	}
	go b.runWriter()
	return b, nil
}

func readCounters(tx *bbolt.Tx) (rev, compacted uint64, err error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, 0, fmt.Errorf("%w: no meta bucket", errCorrupt)
	}
	if rev, err = getUint(meta, keyRevision); err != nil {
		return 0, 0, err
	}
	if compacted, err = getUint(meta, keyCompacted); err != nil {
		return 0, 0, err
	}
	if compacted > rev {
		return 0, 0, fmt.Errorf("%w: compacted revision %d is past revision %d", errCorrupt, compacted, rev)
	}
	return rev, compacted, nil
}

// Close stops the writer after the writes already queued have committed, ends every
// watch (closing its channel) and closes the file. Calls after the first return nil;
// other calls made during or after Close fail with ErrClosed.
func (b *Bolt) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.queue)
	close(b.closing)
	b.mu.Unlock()

	<-b.writerDone
	b.watchers.Wait()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	b.log.Info("closed", zap.Uint64("revision", b.rev))
	return nil
}

// Revision is the revision of the last write that committed and was published to
// watchers.
func (b *Bolt) Revision() uint64 { return b.hub.revision() }

// view runs fn in a read transaction, saying ErrClosed rather than bbolt's own error
// once the store is closed.
func (b *Bolt) view(fn func(tx *bbolt.Tx) error) error {
	err := b.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Stats reads the counters and per-kind object counts in one read transaction. Object
// counts come from bbolt's page statistics, which visit every page of the bucket but
// no value. Errors are logged and leave the affected fields zero, since metrics must
// not fail.
func (b *Bolt) Stats() Stats {
	s := Stats{Objects: map[string]int{}}
	err := b.view(func(tx *bbolt.Tx) error {
		var err error
		if s.Revision, s.CompactedRevision, err = readCounters(tx); err != nil {
			return err
		}
		objects := tx.Bucket(bucketObjects)
		return objects.ForEachBucket(func(name []byte) error {
			s.Objects[string(name)] = objects.Bucket(name).Stats().KeyN
			return nil
		})
	})
	if err != nil {
		b.log.Warn("stats", zap.Error(err))
	}
	if fi, err := os.Stat(b.db.Path()); err == nil {
		s.FileBytes = fi.Size()
	}
	return s
}
