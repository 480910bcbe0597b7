package store

import (
	"go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// maxCompact bounds the events one compaction deletes, so that a file opened with a
// much smaller EventHistory than it was written with does not stall the writer in one
// huge transaction; the rest goes after later batches.
const maxCompact = 16384

// compactIfNeeded trims the event log to the newest b.history events once it has grown
// 10% past that, so that the cost of a compaction (one more fsync) is paid once per
// history/10 writes rather than on every write. It runs in the writer goroutine.
func (b *Bolt) compactIfNeeded() {
	if b.rev-b.compacted <= b.history+b.history/10 {
		return
	}
	target := min(b.rev-b.history, b.compacted+maxCompact)
	err := b.db.Update(func(tx *bbolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		// Revisions are dense, so the keys to delete are known without a cursor.
		for rev := b.compacted + 1; rev <= target; rev++ {
			if err := events.Delete(revKey(rev)); err != nil {
				return err
			}
		}
		return putUint(tx.Bucket(bucketMeta), keyCompacted, target)
	})
	if err != nil {
		// The log just stays longer; the next batch tries again.
		b.log.Warn("compaction failed", zap.Uint64("target", target), zap.Error(err))
		return
	}
	b.log.Debug("compacted event log", zap.Uint64("from", b.compacted), zap.Uint64("to", target))
	b.compacted = target
	b.hub.compact(target)
}
