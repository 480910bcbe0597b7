package controller

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Queue is a work queue of object keys for a reconcile loop, with client-go's
// semantics: a key is queued at most once however often it is added; a key added
// while a worker processes it is queued again when the worker calls Done (so no two
// workers ever reconcile the same key at once, and no change is missed); failed keys
// come back after a per-key exponential back-off. It is safe for concurrent use.
type Queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	queue      []string
	dirty      map[string]bool // queued, or to be queued again after processing
	processing map[string]bool
	failures   map[string]int
	shutdown   bool
	done       chan struct{} // closed by ShutDown
	delayed    sync.WaitGroup

	// BaseDelay and MaxDelay bound the back-off of AddRateLimited. If zero, 5 ms
	// and 5 min.
	BaseDelay, MaxDelay time.Duration
	// Clock times AddAfter; nil means the wall clock. Set it before the first Add.
	// The back-off of AddRateLimited always runs on the wall clock: it paces retries
	// against the API server, which a test's fake time does not move.
	Clock Clock
}

// errRetry marks a sync that is not finished yet rather than failed: its key comes
// back after its back-off, and Work does not log it.
var errRetry = errors.New("not finished yet")

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	q := &Queue{dirty: map[string]bool{}, processing: map[string]bool{}, failures: map[string]int{}, done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key unless it is queued already.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown || q.dirty[key] {
		return
	}
	q.dirty[key] = true
	if q.processing[key] {
		return // Done queues it again
	}
	q.queue = append(q.queue, key)
	q.cond.Signal()
}

// AddAfter queues key after d.
func (q *Queue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.after(q.clock(), d, func() { q.Add(key) })
}

// after calls f after d by clock c, unless the queue is shut down first. Wait waits
// for the goroutine that waits.
func (q *Queue) after(c Clock, d time.Duration, f func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	t := c.NewTimer(d)
	q.delayed.Add(1)
	go func() {
		defer q.delayed.Done()
		select {
		case <-t.C():
			f()
		case <-q.done:
			t.Stop()
		}
	}()
}

// AddRateLimited queues key after its back-off, which doubles with every failure
// until Forget.
func (q *Queue) AddRateLimited(key string) {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	base, maxDelay := q.BaseDelay, q.MaxDelay
	q.mu.Unlock()
	if base == 0 {
		base = 5 * time.Millisecond
	}
	if maxDelay == 0 {
		maxDelay = 5 * time.Minute
	}
	d := base
	for i := 0; i < n && d < maxDelay; i++ {
		d *= 2
	}
	q.after(RealClock{}, min(d, maxDelay), func() { q.Add(key) })
}

// Forget clears key's back-off after a success.
func (q *Queue) Forget(key string) {
	q.mu.Lock()
	delete(q.failures, key)
	q.mu.Unlock()
}

// Failures is how many times key has failed since its last Forget.
func (q *Queue) Failures(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[key]
}

// Get blocks until a key is ready and returns it; ok is false once the queue is
// shut down. The caller must call Done(key) when finished.
func (q *Queue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if q.shutdown {
		return "", false
	}
	key, q.queue = q.queue[0], q.queue[1:]
	q.processing[key] = true
	delete(q.dirty, key)
	return key, true
}

// Done marks key processed, queueing it again if it was added meanwhile.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] && !q.shutdown {
		q.queue = append(q.queue, key)
		q.cond.Signal()
	}
}

// Len is how many keys wait.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// ShutDown wakes every Get with ok false and drops the pending delayed adds; later
// Adds are ignored.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	if !q.shutdown {
		q.shutdown = true
		close(q.done)
	}
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *Queue) clock() Clock {
	if q.Clock == nil {
		return RealClock{}
	}
	return q.Clock
}

// Wait waits, after ShutDown, until the goroutines of delayed adds have stopped.
func (q *Queue) Wait() { q.delayed.Wait() }

// Work takes keys until the queue shuts down and calls sync for each: a key whose
// sync fails comes back after its back-off; one that succeeds has its back-off reset.
// Several goroutines may Work one queue; no key is ever synced by two at once.
func (q *Queue) Work(ctx context.Context, log *zap.Logger, sync func(context.Context, string) error) {
	for {
		key, ok := q.Get()
		if !ok {
			return
		}
		err := sync(ctx, key)
		switch {
		case err == nil:
			q.Forget(key)
		case ctx.Err() == nil:
			if !errors.Is(err, errRetry) {
				log.Info("sync failed; retrying", zap.String("key", key), zap.Error(err))
			}
			q.AddRateLimited(key)
		}
		q.Done(key)
	}
}
