package events

import (
	"context"
	"sync"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// writers is how many events a Recorder writes at once. One at a time, each write
// waits for its own fsync and a pod burst outruns the queue; concurrent writes
// share the store's group commit.
const writers = 8

// queued is an event waiting to be written, with its aggregation key.
type queued struct {
	e   *api.Event
	key string
}

// writeQueue holds a Recorder's events until they are written: at most QueueSize
// at a time, up to writers written at once, and the events of one aggregation key
// one after another (so a repeat finds the event it counts in). Its goroutines exist
// only while there is something to write, since an idle server has a dozen
// recorders. push is safe for concurrent use and never blocks.
type writeQueue struct {
	mu      sync.Mutex
	pending []queued // pushed, not yet taken by run
	held    int      // pushed and not yet written
	wake    chan struct{}
}

func newWriteQueue() *writeQueue {
	return &writeQueue{wake: make(chan struct{}, 1)}
}

// push queues it, or reports false when the queue is full.
func (q *writeQueue) push(it queued) bool {
	q.mu.Lock()
	if q.held >= QueueSize {
		q.mu.Unlock()
		return false
	}
	q.held++
	q.pending = append(q.pending, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

func (q *writeQueue) take() []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending
	q.pending = nil
	return p
}

func (q *writeQueue) written() {
	q.mu.Lock()
	q.held--
	q.mu.Unlock()
}

// run writes what is pushed with write until ctx is cancelled, and returns once
// the writes it started have returned.
func (q *writeQueue) run(ctx context.Context, write func(context.Context, queued)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan string, writers) // the key of each finished write
	// A key in busy has one event being written or in ready; the events of that key
	// that came after it wait in the slice.
	busy := map[string][]queued{}
	var ready []queued
	running := 0
	for {
		for running < writers && len(ready) > 0 {
			it := ready[0]
			ready = ready[1:]
			running++
			wg.Add(1)
			go func() {
				defer wg.Done()
				write(ctx, it)
				q.written()
				done <- it.key
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
			for _, it := range q.take() {
				if waiting, ok := busy[it.key]; ok {
					busy[it.key] = append(waiting, it)
				} else {
					busy[it.key] = nil
					ready = append(ready, it)
				}
			}
		case key := <-done:
			running--
			if waiting := busy[key]; len(waiting) > 0 {
				ready = append(ready, waiting[0])
				busy[key] = waiting[1:]
			} else {
				delete(busy, key)
			}
		}
	}
}
