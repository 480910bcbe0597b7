// Package keylock serialises work per key (a pod, a container) while work on
// different keys runs in parallel.
package keylock

import "sync"

// Map holds one mutex per key in use. The zero value is ready to use; a Map
// must not be copied after first use. It is safe for concurrent use.
type Map struct {
	mu    sync.Mutex
	locks map[string]*entry
}

// entry is a key's mutex and how many callers hold or wait for it, so that the
// key is forgotten once nobody does.
type entry struct {
	mu    sync.Mutex
	users int
}

// Lock locks key and returns the function that unlocks it.
func (m *Map) Lock(key string) (unlock func()) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[string]*entry{}
	}
	e := m.locks[key]
	if e == nil {
		e = &entry{}
		m.locks[key] = e
	}
	e.users++
	m.mu.Unlock()

	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		m.mu.Lock()
		if e.users--; e.users == 0 {
			delete(m.locks, key)
		}
		m.mu.Unlock()
	}
}
