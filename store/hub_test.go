package store

import (
	"fmt"
	"testing"
)

// The ring starts small and grows as writes come, keeping every event it held, up to
// its size; past that the oldest events leave it and a reader behind them is sent to
// the log.
func TestHubRingGrowsToItsSize(t *testing.T) {
	const start, size = 100, 4 * firstRingSize
	h := newHub(size, start, 0)
	if len(h.ring) != firstRingSize {
		t.Fatalf("new ring holds %d events, want %d", len(h.ring), firstRingSize)
	}
	f := watchFilter{resource: "pods"}
	// Batches of uneven lengths, so that growth happens inside a batch.
	rev := uint64(start)
	for _, n := range []int{1, 255, 7, 300, 600, 2} {
		evs := make([]Event, n)
		for i := range evs {
			rev++
			evs[i] = Event{Type: Added, Revision: rev, Resource: "pods", Key: fmt.Sprint("default/p", rev)}
		}
		h.publish(evs)
	}
	if len(h.ring) != size {
		t.Errorf("after %d events the ring holds %d, want %d", rev-start, len(h.ring), size)
	}
	// 1165 events were published; the ring keeps the last 1024.
	from := rev - size
	for pos := from; pos < rev; {
		out, next, inRing, _, err := h.read(pos, f, nil)
		if err != nil || !inRing {
			t.Fatalf("read from %d: in ring %v, error %v", pos, inRing, err)
		}
		for i, ev := range out {
			if want := pos + 1 + uint64(i); ev.Revision != want || ev.Key != fmt.Sprint("default/p", want) {
				t.Fatalf("read from %d: event %d is %d %s, want %d", pos, i, ev.Revision, ev.Key, want)
			}
		}
		pos = next
	}
	if _, _, inRing, _, _ := h.read(from-1, f, nil); inRing {
		t.Errorf("read from %d: in ring, want the log (the ring starts after %d)", from-1, from)
	}
}
