package ipam

import (
	"fmt"
	"sort"
)

// ranges is the owner-keyed allocator behind Pool, ServiceIPs and NodePorts. It works
// on offsets [0, size) and knows nothing of addresses. It is not safe for concurrent
// use: its users hold their own lock.
type ranges struct {
	size int
	// forbid reports offsets no owner may hold (network, gateway, broadcast).
	forbid func(int) bool
	// skip reports offsets allocate never picks but reserve may grant (the
	// "kubernetes" Service address). Nil means none.
	skip func(int) bool

	byOwner map[string]int
	byOff   map[int]string
	next    int
	// fresh holds the owners allocated since the last restore: in flight.
	fresh map[string]struct{}
	// gone holds the owners released since the last restore.
	gone map[string]struct{}
}

func newRanges(size int, forbid, skip func(int) bool) *ranges {
	if forbid == nil {
		forbid = func(int) bool { return false }
	}
	if skip == nil {
		skip = func(int) bool { return false }
	}
	return &ranges{
		size:    size,
		forbid:  forbid,
		skip:    skip,
		byOwner: map[string]int{},
		byOff:   map[int]string{},
		fresh:   map[string]struct{}{},
		gone:    map[string]struct{}{},
	}
}

// valid reports whether an owner may hold off.
func (r *ranges) valid(off int) bool {
	return off >= 0 && off < r.size && !r.forbid(off)
}

func (r *ranges) set(owner string, off int) {
	r.byOwner[owner] = off
	r.byOff[off] = owner
	delete(r.gone, owner)
}

// allocate returns owner's offset, picking the next free one if it has none; created
// says whether it was picked now.
func (r *ranges) allocate(owner string) (off int, created bool, err error) {
	if off, ok := r.byOwner[owner]; ok {
		return off, false, nil
	}
	for i := 0; i < r.size; i++ {
		off := (r.next + i) % r.size
		if r.forbid(off) || r.skip(off) {
			continue
		}
		if _, taken := r.byOff[off]; taken {
			continue
		}
		r.set(owner, off)
		r.fresh[owner] = struct{}{}
		r.next = (off + 1) % r.size
		return off, true, nil
	}
	return 0, false, ErrExhausted
}

// reserve gives owner exactly off, moving it from any offset it held. prev is the
// offset it held before (-1 for none), so that a caller can undo.
func (r *ranges) reserve(owner string, off int) (prev int, err error) {
	if !r.valid(off) {
		return -1, ErrInvalid
	}
	prev = -1
	if p, ok := r.byOwner[owner]; ok {
		prev = p
	}
	if cur, ok := r.byOff[off]; ok {
		if cur == owner {
			return prev, nil
		}
		return prev, fmt.Errorf("held by %q: %w", cur, ErrConflict)
	}
	if prev >= 0 {
		delete(r.byOff, prev)
	}
	r.set(owner, off)
	r.fresh[owner] = struct{}{}
	return prev, nil
}

// release frees owner's offset; it returns the offset freed and whether there was one.
func (r *ranges) release(owner string) (int, bool) {
	off, ok := r.byOwner[owner]
	if !ok {
		return 0, false
	}
	delete(r.byOwner, owner)
	delete(r.byOff, off)
	delete(r.fresh, owner)
	r.gone[owner] = struct{}{}
	return off, true
}

func (r *ranges) lookup(owner string) (int, bool) {
	off, ok := r.byOwner[owner]
	return off, ok
}

// restore applies the rules of the package documentation. known maps owners to an
// offset, or to -1 for "known, no address"; offsets that are not valid count as -1.
func (r *ranges) restore(known map[string]int) (released []string) {
	byOwner := map[string]int{}
	byOff := map[int]string{}
	lost := map[string]struct{}{}
	place := func(owner string, off int) bool {
		if _, taken := byOff[off]; taken {
			return false
		}
		byOwner[owner] = off
		byOff[off] = owner
		return true
	}

	recent := func(o string) bool {
		_, fresh := r.fresh[o]
		_, gone := r.gone[o]
		return fresh || gone
	}
	owners := make([]string, 0, len(known))
	for o := range known {
		if !recent(o) {
			owners = append(owners, o)
		}
	}
	sort.Strings(owners)

	// Rule 2: the API's addresses, for owners not recently allocated or released.
	for _, o := range owners {
		if off := known[o]; r.valid(off) && !place(o, off) {
			lost[o] = struct{}{}
		}
	}
	// Rule 3: known owners without an address keep what they hold.
	for _, o := range owners {
		if r.valid(known[o]) {
			continue
		}
		if off, ok := r.byOwner[o]; ok && !place(o, off) {
			lost[o] = struct{}{}
		}
	}
	// Rule 1: in-flight owners keep what they hold unless rule 2 took it.
	inflight := make([]string, 0, len(r.fresh))
	for o := range r.fresh {
		inflight = append(inflight, o)
	}
	sort.Strings(inflight)
	for _, o := range inflight {
		if off, ok := r.byOwner[o]; ok && !place(o, off) {
			lost[o] = struct{}{}
		}
	}
	// Rule 4: everyone else is released.
	for o := range r.byOwner {
		if _, ok := byOwner[o]; !ok {
			lost[o] = struct{}{}
		}
	}

	r.byOwner, r.byOff = byOwner, byOff
	r.fresh, r.gone = map[string]struct{}{}, map[string]struct{}{}
	for o := range lost {
		released = append(released, o)
	}
	sort.Strings(released)
	return released
}

// snapshot copies the owner → offset map.
func (r *ranges) snapshot() map[string]int {
	m := make(map[string]int, len(r.byOwner))
	for o, off := range r.byOwner {
		m[o] = off
	}
	return m
}

// clone returns a deep copy, used to undo a restore whose persistence failed.
func (r *ranges) clone() *ranges {
	c := newRanges(r.size, r.forbid, r.skip)
	for o, off := range r.byOwner {
		c.set(o, off)
	}
	for o := range r.fresh {
		c.fresh[o] = struct{}{}
	}
	for o := range r.gone {
		c.gone[o] = struct{}{}
	}
	c.next = r.next
	return c
}

// free counts the offsets allocate could still pick.
func (r *ranges) free() int {
	n := 0
	for off := 0; off < r.size; off++ {
		if r.forbid(off) || r.skip(off) {
			continue
		}
		if _, taken := r.byOff[off]; !taken {
			n++
		}
	}
	return n
}
