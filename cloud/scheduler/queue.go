package scheduler

import (
	"slices"
	"sync"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// goneTTL is how long the queue remembers a deleted pod, to refuse stale copies of it
// that were already on their way (in the pending channel, or being attempted).
const goneTTL = 5 * time.Minute

// retryQueue holds the pods Run could not place, one entry per pod (by UID: a later
// version replaces the earlier), each due again after an exponential backoff or as soon
// as retryAll says the cluster changed. It is safe for concurrent use.
type retryQueue struct {
	initial, max time.Duration
	now          func() time.Time
	// wake has capacity 1; it is signalled when an entry becomes due earlier than the
	// time next last reported.
	wake chan struct{}

	mu    sync.Mutex
	items map[string]*retryItem
	gone  map[string]time.Time // deleted pods' keys, until they may be forgotten
}

type retryItem struct {
	pod      *api.Pod
	attempts int       // failures so far
	at       time.Time // when the pod is due
	held     bool      // handed out by due and not yet reported back
	kick     bool      // retryAll came while held: due at once after failing
}

func newRetryQueue(initial, max time.Duration, now func() time.Time) *retryQueue {
	return &retryQueue{
		initial: initial, max: max, now: now,
		wake:  make(chan struct{}, 1),
		items: map[string]*retryItem{},
		gone:  map[string]time.Time{},
	}
}

// backoff is the wait after the n-th consecutive failure: initial, doubling, capped.
func (q *retryQueue) backoff(n int) time.Duration {
	d := q.initial
	for i := 1; i < n && d < q.max; i++ {
		d *= 2
	}
	return min(d, q.max)
}

// failed records that pod could not be placed and returns how long until it is due,
// or false if the pod was deleted and is not queued.
func (q *retryQueue) failed(pod *api.Pod) (time.Duration, bool) {
	key := podKey(pod)
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, gone := q.gone[key]; gone {
		return 0, false
	}
	it := q.items[key]
	if it == nil {
		it = &retryItem{}
		q.items[key] = it
	}
	it.pod = pod
	it.attempts++
	d := q.backoff(it.attempts)
	if it.kick {
		d = 0
	}
	it.at = q.now().Add(d)
	it.held, it.kick = false, false
	return d, true
}

// forget drops the pod with key: it was placed, or no longer needs placing.
func (q *retryQueue) forget(key string) {
	q.mu.Lock()
	delete(q.items, key)
	q.mu.Unlock()
}

// deleted drops the pod with key and refuses it for goneTTL.
func (q *retryQueue) deleted(key string) {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.items, key)
	for k, until := range q.gone {
		if now.After(until) {
			delete(q.gone, k)
		}
	}
	q.gone[key] = now.Add(goneTTL)
}

// isGone reports whether the pod with key was deleted.
func (q *retryQueue) isGone(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, gone := q.gone[key]
	return gone
}

// retryAll makes every queued pod due now, keeping its failure count, and wakes Run.
func (q *retryQueue) retryAll() {
	now := q.now()
	q.mu.Lock()
	for _, it := range q.items {
		if it.held {
			it.kick = true
		} else {
			it.at = now
		}
	}
	q.mu.Unlock()
	q.poke()
}

// poke wakes Run to look at the queue again: an entry may be due sooner than the time
// next last reported.
func (q *retryQueue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// due hands out the pods whose time has come, longest waiting first, and holds them
// until failed or forget reports on each.
func (q *retryQueue) due() []*api.Pod {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	var ready []*retryItem
	for _, it := range q.items {
		if !it.held && !it.at.After(now) {
			it.held = true
			ready = append(ready, it)
		}
	}
	slices.SortFunc(ready, func(a, b *retryItem) int { return a.at.Compare(b.at) })
	pods := make([]*api.Pod, len(ready))
	for i, it := range ready {
		pods[i] = it.pod
	}
	return pods
}

// release returns the held pods to the queue, due at once.
func (q *retryQueue) release() {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range q.items {
		if it.held {
			it.held, it.kick, it.at = false, false, now
		}
	}
}

// next returns how long until the next pod is due, or false if none is waiting.
func (q *retryQueue) next() (time.Duration, bool) {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	var first time.Time
	for _, it := range q.items {
		if !it.held && (first.IsZero() || it.at.Before(first)) {
			first = it.at
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return max(first.Sub(now), 0), true
}

// len returns how many pods are queued, held ones included.
func (q *retryQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
