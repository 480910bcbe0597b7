package controller

import (
	"sync"
	"time"
)

// expectations remember the pod creations and deletions a controller asked for and
// has not yet seen through its informer (client-go's ControllerExpectations), so
// that a sync reading a lagging cache does not act twice. Entries expire after
// expectationTTL by the controller's clock, in case an event is lost. It is safe for
// concurrent use.
type expectations struct {
	mu    sync.Mutex
	adds  map[string]string // pod key -> owner key
	dels  map[string]string
	since map[string]time.Time // owner key -> when the oldest entry was made
	clock Clock
}

const expectationTTL = 5 * time.Minute

func newExpectations(clock Clock) *expectations {
	return &expectations{adds: map[string]string{}, dels: map[string]string{}, since: map[string]time.Time{}, clock: clock}
}

func (e *expectations) expect(owner string, pods []string, del bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.adds
	if del {
		m = e.dels
	}
	for _, p := range pods {
		m[p] = owner
	}
	if _, ok := e.since[owner]; !ok {
		e.since[owner] = e.clock.Now()
	}
}

func (e *expectations) observe(pod string, del bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if del {
		delete(e.dels, pod)
	} else {
		delete(e.adds, pod)
	}
}

func (e *expectations) deleting(pod string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.dels[pod]
	return ok
}

func (e *expectations) satisfied(owner string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	pending := false
	for _, m := range []map[string]string{e.adds, e.dels} {
		for _, o := range m {
			if o == owner {
				pending = true
				break
			}
		}
	}
	if !pending {
		delete(e.since, owner)
		return true
	}
	if e.clock.Now().Sub(e.since[owner]) > expectationTTL {
		e.forgetLocked(owner)
		return true
	}
	return false
}

func (e *expectations) forget(owner string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.forgetLocked(owner)
}

func (e *expectations) forgetLocked(owner string) {
	for _, m := range []map[string]string{e.adds, e.dels} {
		for p, o := range m {
			if o == owner {
				delete(m, p)
			}
		}
	}
	delete(e.since, owner)
}
