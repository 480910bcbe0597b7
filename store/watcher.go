package store

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Watcher reads one watch's events in its caller's goroutine. The API server's
// watch handler reads one directly, so a watch stream costs no goroutine and channel
// in the store between the ring and the connection. It is not safe for concurrent
// use; a zero Watcher is not usable (Follow makes them).
type Watcher struct {
	b   *Bolt
	f   watchFilter
	pos uint64 // the revision read up to
	buf []Event
}

// Follow starts a watch of the kind's events after opts.FromRevision (from now, if
// zero), read with Next. It fails with ErrGone if that revision was compacted.
func (b *Bolt) Follow(k *api.KindInfo, opts WatchOptions) (*Watcher, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.follow(k, opts)
}

// follow is Follow with b.mu held for reading.
func (b *Bolt) follow(k *api.KindInfo, opts WatchOptions) (*Watcher, error) {
	if err := checkKind(k); err != nil {
		return nil, err
	}
	if opts.Namespace != "" && !k.Namespaced {
		return nil, fmt.Errorf("%s: %w", k.Resource, &api.FieldError{Field: "namespace", Reason: k.Resource + " are cluster-scoped"})
	}
	if b.closed {
		return nil, ErrClosed
	}
	f := watchFilter{resource: k.Resource}
	if opts.Namespace != "" {
		f.prefix = opts.Namespace + "/"
	}
	pos := opts.FromRevision
	if pos == 0 {
		pos = b.hub.revision()
	}
	if c := b.hub.compactedRevision(); pos < c {
		return nil, goneError(k.Resource, pos, c)
	}
	return &Watcher{b: b, f: f, pos: pos}, nil
}

// Next returns the matching events after the last ones it returned, from the ring
// or, when the ring no longer holds them, from the log; they are valid until the
// next call, and their Object is shared and must not be modified. When it has caught
// up it returns no events and a channel that closes once the revision advances: wait
// on it (and on Closing) before calling again. While it returns a nil channel there
// may be more to read at once. An error ends the watch: it wraps ErrGone when the
// watcher fell behind the compacted revision, and is ErrClosed once the store closes.
func (w *Watcher) Next() (evs []Event, advanced <-chan struct{}, err error) {
	clear(w.buf) // let delivered objects be collected while the caller waits
	evs, next, advanced, err := w.b.fetch(w.pos, w.f, w.buf[:0])
	if err != nil {
		select {
		case <-w.b.closing:
			return nil, nil, ErrClosed // the error is the file closing under us
		default:
		}
		w.b.log.Debug("watch ends", zap.String("resource", w.f.resource), zap.Error(err))
		return nil, nil, err
	}
	w.buf = evs
	if next != w.pos {
		w.pos = next
		return evs, nil, nil
	}
	if cap(w.buf) > idleFetchBuffer {
		w.buf = nil
	}
	return nil, advanced, nil
}

// Closing is closed when the store begins to close; a caller waiting for events
// stops then.
func (w *Watcher) Closing() <-chan struct{} { return w.b.closing }
