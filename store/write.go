package store

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// maxBatch is the most writes one transaction commits. An fsync costs the same for one
// write as for many, so under load the writer folds everything queued during the last
// fsync into the next one; the cap bounds the latency of the batch's first write.
const maxBatch = 256

// writeOp is one write waiting for the writer goroutine.
//
// apply runs inside the batch's transaction. It must do every check (exists, conflict)
// before its first change to w, so that an op that fails has changed nothing and the
// rest of the batch can still commit. It may run more than once (see tryCommit), so it
// must derive everything from what it captured when the op was made, not from what an
// earlier run stamped on its object.
type writeOp struct {
	ctx   context.Context
	apply func(w *writeTx) (api.Object, error)
	state atomic.Int32
	done  chan writeResult // buffered: the writer never waits for the caller
}

// States of a writeOp: the caller may abandon it only while it is queued, so that a
// write the writer has started is always answered with its true outcome.
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

type writeResult struct {
	obj api.Object
	err error
}

// write queues apply for the writer and waits until its batch is durable. If ctx ends
// before the writer takes the op, the op is dropped and ctx's error returned; once
// taken, the caller waits for the commit, so an error never hides a committed write.
func (b *Bolt) write(ctx context.Context, apply func(w *writeTx) (api.Object, error)) (api.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	op := &writeOp{ctx: ctx, apply: apply, done: make(chan writeResult, 1)}

	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case b.queue <- op:
	case <-ctx.Done():
		b.mu.RUnlock()
		return nil, ctx.Err()
	}
	b.mu.RUnlock()

	select {
	case r := <-op.done:
		return r.obj, r.err
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return nil, ctx.Err()
		}
		r := <-op.done
		return r.obj, r.err
	}
}

// runWriter is the only goroutine that writes to the file. It takes one op, drains
// whatever else is queued without waiting, and commits them all in one transaction.
// It returns when Close closes the queue and the ops in it have been answered.
func (b *Bolt) runWriter() {
	defer close(b.writerDone)
	batch := make([]*writeOp, 0, maxBatch)
	for op := range b.queue {
		batch = append(batch[:0], op)
	fill:
		for len(batch) < maxBatch {
			select {
			case op, ok := <-b.queue:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		b.commitBatch(batch)
		b.compactIfNeeded()
	}
}

// commitBatch answers every op of batch.
func (b *Bolt) commitBatch(batch []*writeOp) {
	live := make([]*writeOp, 0, len(batch))
	for _, op := range batch {
		if !op.state.CompareAndSwap(opQueued, opTaken) {
			continue // the caller gave up while it was queued
		}
		if err := op.ctx.Err(); err != nil {
			op.done <- writeResult{err: err}
			continue
		}
		live = append(live, op)
	}
	for len(live) > 0 {
		bad, err := b.tryCommit(live)
		if bad < 0 {
			return
		}
		live[bad].done <- writeResult{err: err}
		live = append(live[:bad], live[bad+1:]...)
	}
}

// tryCommit runs ops in one transaction, commits it, publishes its events and answers
// every op, returning -1. An op that fails before changing anything just gets its
// error. An op that fails after changing the transaction (which checks-first ops only
// do on a bbolt error or a bug) poisons it: tryCommit rolls back, answers nobody, and
// returns that op's index so that commitBatch can answer it and retry the others
// without it, as bbolt's own DB.Batch does.
func (b *Bolt) tryCommit(ops []*writeOp) (int, error) {
	tx, err := b.db.Begin(true)
	if err != nil {
		b.answerAll(ops, fmt.Errorf("store: begin: %w", err))
		return -1, nil
	}
	w := &writeTx{tx: tx, rev: b.rev, sealer: b.sealer}
	results := make([]writeResult, len(ops))
	for i, op := range ops {
		w.touched = false
		obj, err := b.runOp(w, op)
		if err != nil && w.touched {
			_ = tx.Rollback()
			return i, err
		}
		results[i] = writeResult{obj: obj, err: err}
	}

	if w.rev == b.rev {
		// Every op failed its checks: nothing to make durable.
		_ = tx.Rollback()
	} else {
		err := putUint(tx.Bucket(bucketMeta), keyRevision, w.rev)
		if err == nil {
			err = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
		if err != nil {
			b.log.Error("commit failed", zap.Int("writes", len(ops)), zap.Error(err))
			b.answerAll(ops, fmt.Errorf("store: commit: %w", err))
			return -1, nil
		}
		b.rev = w.rev
		b.hub.publish(w.events)
	}
	for i, op := range ops {
		op.done <- results[i]
	}
	return -1, nil
}

// runOp applies op, turning a panic into an error that poisons the transaction: the
// writer must outlive a bug in one write, or every later write would hang.
func (b *Bolt) runOp(w *writeTx, op *writeOp) (obj api.Object, err error) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("write panicked", zap.Any("panic", r), zap.Stack("stack"))
			w.touched = true
			obj, err = nil, fmt.Errorf("store: write panicked: %v", r)
		}
	}()
	return op.apply(w)
}

func (b *Bolt) answerAll(ops []*writeOp, err error) {
	for _, op := range ops {
		op.done <- writeResult{err: err}
	}
}

// writeTx is the writer's view of a batch transaction.
type writeTx struct {
	tx     *bbolt.Tx
	sealer Sealer
	// rev is the revision of the batch's last write so far.
	rev uint64
	// events are the batch's events, in revision order, to publish after the commit.
	events []Event
	// touched is set when the current op first changes the transaction.
	touched bool
}

// get returns the stored bytes under key (sealed, for a sealed resource), or nil;
// enough to tell whether the key exists. The bytes are valid only during the
// transaction.
func (w *writeTx) get(k *api.KindInfo, key string) []byte {
	kb := kindBucket(w.tx, k)
	if kb == nil {
		return nil
	}
	return kb.Get([]byte(key))
}

// getObject returns the object's JSON under key, opened, or nil.
func (w *writeTx) getObject(k *api.KindInfo, key string) ([]byte, error) {
	v := w.get(k, key)
	if v == nil {
		return nil, nil
	}
	return w.sealer.Open(k.Resource, v)
}

// record is the one way a write changes the store: it takes the next revision, stamps
// it on obj, stores obj under key (or deletes key for Deleted) and appends the event.
// Everything that can fail for a reason other than bbolt itself happens before the
// first change.
func (w *writeTx) record(k *api.KindInfo, key string, typ EventType, obj api.Object) error {
	rev := w.rev + 1
	obj.GetObjectMeta().ResourceVersion = strconv.FormatUint(rev, 10)
	data, err := encode(k, obj)
	if err != nil {
		return err
	}
	ev := Event{Type: typ, Revision: rev, Resource: k.Resource, Key: key, Object: data}
	stored, err := w.sealer.Seal(k.Resource, data)
	if err != nil {
		return fmt.Errorf("seal %s %s: %w", k.Resource, key, err)
	}
	// The log on disk holds what the bucket holds; watchers get the plaintext ev.
	rec, err := encodeEvent(Event{Type: typ, Revision: rev, Resource: k.Resource, Key: key, Object: stored})
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}

	w.touched = true
	kb, err := w.tx.Bucket(bucketObjects).CreateBucketIfNotExists([]byte(k.Resource))
	if err != nil {
		return fmt.Errorf("bucket %s: %w", k.Resource, err)
	}
	if typ == Deleted {
		err = kb.Delete([]byte(key))
	} else {
		err = kb.Put([]byte(key), stored)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", k.Resource, key, err)
	}
	if err := w.tx.Bucket(bucketEvents).Put(revKey(rev), rec); err != nil {
		return fmt.Errorf("event %d: %w", rev, err)
	}
	w.rev = rev
	w.events = append(w.events, ev)
	return nil
}
