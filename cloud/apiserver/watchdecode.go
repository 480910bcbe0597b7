package apiserver

import (
	"sync"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

// watchDecodeSlots is how many recent events keep their decoded object. Watches that
// keep up read an event within a few others of each other.
const watchDecodeSlots = 64

// watchDecodes decodes each event once for all the watches with a selector that test
// it, rather than once per watch: every node's agent watches pods by node name, so a
// pod event would otherwise be decoded once per node. The objects it returns are
// shared and only read (by the selectors). The zero value is ready; it is safe for
// concurrent use.
type watchDecodes struct {
	mu    sync.Mutex
	slots [watchDecodeSlots]*decodedEvent
}

// decodedEvent is the object of the event with one revision, decoded once.
type decodedEvent struct {
	revision uint64
	once     sync.Once
	obj      api.Object
	err      error
}

// decode returns ev's object, decoded by the first watch that asked for it. The
// caller must not modify it.
func (d *watchDecodes) decode(ev store.Event) (api.Object, error) {
	d.mu.Lock()
	slot := &d.slots[ev.Revision%watchDecodeSlots]
	e := *slot
	if e == nil || e.revision != ev.Revision {
		e = &decodedEvent{revision: ev.Revision}
		*slot = e
	}
	d.mu.Unlock()
	e.once.Do(func() { e.obj, e.err = ev.Decode() })
	return e.obj, e.err
}
