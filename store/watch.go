package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/cloudbox/cloudbox/cloud/api"
)

const (
	// defaultRingSize is how many recent events stay in memory. A watcher that keeps
	// up (nearly all of them) never reads the file; one that lags further, or resumes
	// from before the last start, reads the event log instead.
	defaultRingSize = 4096
	// firstRingSize is the ring's size when the store opens. It doubles, up to the
	// ring size, when a write would push out an event the ring could still hold, so
	// an idle server keeps a small ring (4096 events' headers are 384 KiB) and one
	// under load the whole ring.
	firstRingSize = 256
	// fetchMax is the most revisions a watcher scans per step, which bounds how long
	// it holds the hub's lock and how much it buffers.
	fetchMax = 512
	// watchBuffer is each watch channel's buffer, so that a consumer's short pauses
	// do not stall its watcher.
	watchBuffer = 64
	// idleFetchBuffer is the most events' room a watcher keeps while it waits. The
	// fetch buffer grows on the heap to fetchMax in a burst and is let go after: an
	// array of fetchMax events (48 KiB) would not escape and so would grow every
	// watcher goroutine's stack to 128 KiB, which an idle all-in-one server, with
	// its 60 watches, kept as 7 MiB of stacks.
	idleFetchBuffer = 16
)

// hub is what the writer tells watchers: the recent events, and a signal that closes
// whenever the revision advances (Nomad's BlockingQuery pattern). The writer never
// waits for a watcher: it appends to the ring and closes the signal; each watcher
// goroutine pulls at its own pace, so a slow one only falls behind, and past the
// compacted revision, gets ErrGone.
type hub struct {
	mu   sync.RWMutex
	ring []Event // the event with revision r is at ring[r%len(ring)]
	size int     // the most events ring grows to
	// The ring holds revisions lo+1 through last. last is the last published revision.
	lo, last  uint64
	compacted uint64
	advanced  chan struct{}
}

func newHub(size int, rev, compacted uint64) *hub {
	return &hub{
		ring:      make([]Event, min(size, firstRingSize)),
		size:      size,
		lo:        rev,
		last:      rev,
		compacted: compacted,
		advanced:  make(chan struct{}),
	}
}

// publish appends the events of a committed transaction, in revision order, and wakes
// every waiting watcher.
func (h *hub) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	for _, ev := range evs {
		if ev.Revision-h.lo > uint64(len(h.ring)) && len(h.ring) < h.size {
			h.grow()
		}
		h.ring[ev.Revision%uint64(len(h.ring))] = ev
		h.last = ev.Revision
	}
	if size := uint64(len(h.ring)); h.last-h.lo > size {
		h.lo = h.last - size
	}
	close(h.advanced)
	h.advanced = make(chan struct{})
	h.mu.Unlock()
}

// grow doubles the ring, up to size, keeping the events it holds. The caller holds
// mu for writing.
func (h *hub) grow() {
	ring := make([]Event, min(2*len(h.ring), h.size))
	for r := h.lo + 1; r <= h.last; r++ {
		ring[r%uint64(len(ring))] = h.ring[r%uint64(len(h.ring))]
	}
	h.ring = ring
}

// compact records that events up to rev are gone from the log. Watchers behind it
// find out at their next read; no one needs waking.
func (h *hub) compact(rev uint64) {
	h.mu.Lock()
	h.compacted = rev
	h.mu.Unlock()
}

func (h *hub) revision() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.last
}

func (h *hub) compactedRevision() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.compacted
}

// watchFilter picks the events of one watch.
type watchFilter struct {
	resource string
	prefix   string // "namespace/", or empty for every namespace
}

func (f watchFilter) match(resource, key string) bool {
	return resource == f.resource && strings.HasPrefix(key, f.prefix)
}

// read appends to out the matching events after pos that the ring holds, scanning at
// most fetchMax revisions, and returns the revision it scanned to. inRing is false
// when the ring has moved past pos+1 and the caller must read the log. advanced is
// closed by the next publish: a caller that found nothing new waits on it, and since it
// was taken under the same lock as the read, no publish can slip between.
func (h *hub) read(pos uint64, f watchFilter, out []Event) (_ []Event, next uint64, inRing bool, advanced <-chan struct{}, err error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if pos < h.compacted {
		return out, pos, false, h.advanced, goneError(f.resource, pos, h.compacted)
	}
	if pos < h.lo {
		return out, pos, false, h.advanced, nil
	}
	size := uint64(len(h.ring))
	next = pos
	for next < h.last && next-pos < fetchMax {
		next++
		if ev := h.ring[next%size]; f.match(ev.Resource, ev.Key) {
			out = append(out, ev)
		}
	}
	return out, next, true, h.advanced, nil
}

func goneError(resource string, pos, compacted uint64) error {
	return fmt.Errorf("%s: watch from revision %d: %w (history starts after %d): list again", resource, pos, ErrGone, compacted)
}

// Watch streams the kind's events after opts.FromRevision (from now, if zero), then
// live ones, until ctx ends or the store closes; then the channel closes. A watch
// that falls behind the compacted revision gets a last Event with Err wrapping ErrGone.
// Event.Object is shared between watchers and must not be modified.
func (b *Bolt) Watch(ctx context.Context, k *api.KindInfo, opts WatchOptions) (<-chan Event, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	w, err := b.follow(k, opts)
	if err != nil {
		return nil, err
	}
	ch := make(chan Event, watchBuffer)
	b.watchers.Add(1)
	go b.runWatch(ctx, w, ch)
	return ch, nil
}

// runWatch feeds one watch channel from w until ctx ends or the store closes.
func (b *Bolt) runWatch(ctx context.Context, w *Watcher, ch chan<- Event) {
	defer b.watchers.Done()
	defer close(ch)
	for {
		evs, advanced, err := w.Next()
		if errors.Is(err, ErrClosed) {
			return
		}
		if err != nil {
			select {
			case ch <- Event{Resource: w.f.resource, Err: err}:
			case <-ctx.Done():
			case <-b.closing:
			}
			return
		}
		for _, ev := range evs {
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			case <-b.closing:
				return
			}
		}
		if advanced != nil {
			select {
			case <-advanced:
			case <-ctx.Done():
				return
			case <-b.closing:
				return
			}
		}
	}
}

// fetch returns the matching events after pos and the revision read up to; when that
// is pos, nothing new has committed and the caller waits on advanced.
func (b *Bolt) fetch(pos uint64, f watchFilter, out []Event) ([]Event, uint64, <-chan struct{}, error) {
	out, next, inRing, advanced, err := b.hub.read(pos, f, out)
	if err != nil || inRing {
		return out, next, advanced, err
	}
	// The ring has moved on. advanced was taken before this read, so a commit that
	// the read misses still wakes the caller.
	out, next, err = b.readLog(pos, f, out)
	return out, next, advanced, err
}

// readLog reads up to fetchMax revisions after pos from the event log. It checks
// the compacted revision in the same transaction, so it never skips compacted events
// silently.
func (b *Bolt) readLog(pos uint64, f watchFilter, out []Event) ([]Event, uint64, error) {
	next := pos
	err := b.view(func(tx *bbolt.Tx) error {
		compacted, err := getUint(tx.Bucket(bucketMeta), keyCompacted)
		if err != nil {
			return err
		}
		if pos < compacted {
			return goneError(f.resource, pos, compacted)
		}
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(revKey(pos + 1)); k != nil && next-pos < fetchMax; k, v = c.Next() {
			ev, err := decodeEvent(revOf(k), v)
			if err != nil {
				return err
			}
			if ev.Object, err = b.sealer.Open(ev.Resource, ev.Object); err != nil {
				return err
			}
			if ev.Revision != next+1 {
				return fmt.Errorf("%w: event log jumps from revision %d to %d", errCorrupt, next, ev.Revision)
			}
			next = ev.Revision
			if f.match(ev.Resource, ev.Key) {
				out = append(out, ev)
			}
		}
		return nil
	})
	return out, next, err
}
