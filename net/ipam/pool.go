package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/cloudbox/cloudbox/internal/atomicfile"
)

// Pool hands out the pod addresses of one node's subnet. The network address, the
// gateway (the first host address, which the node's bridge holds) and the broadcast
// address are never handed out. A Pool opened with a path writes every change to that
// file before the call returns, so an address allocated but not yet reported to the API
// survives a crash of the agent; Restore then reconciles the file with the API (see
// the package documentation). A Pool is safe for concurrent use: the file is written
// outside the lock that lookups take, and changes made meanwhile share one write.
type Pool struct {
	mu     sync.Mutex // guards r and changes
	prefix netip.Prefix
	path   string
	r      *ranges
	// changes counts the changes made to r; the file holds the pool as of change saved.
	changes uint64
	saveMu  sync.Mutex // guards saved; held while the file is written (before mu)
	saved   uint64
}

// poolFile is the on-disk form of a Pool.
type poolFile struct {
	Version int               `json:"version"`
	CIDR    string            `json:"cidr"`
	Next    string            `json:"next,omitempty"`
	Owners  map[string]string `json:"owners"`
}

const poolFileVersion = 1

// NewPool returns an in-memory Pool for cidr, which must be an IPv4 subnet of /30 or
// larger.
func NewPool(cidr string) (*Pool, error) {
	p, err := parseV4Prefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("pod subnet: %w", err)
	}
	if p.Bits() > 30 {
		return nil, fmt.Errorf("pod subnet %s: smaller than /30: %w", p, ErrInvalid)
	}
	size := prefixSize(p)
	forbid := func(off int) bool { return off == 0 || off == 1 || off == size-1 }
	return &Pool{prefix: p, r: newRanges(size, forbid, nil)}, nil
}

// OpenPool returns the Pool for cidr persisted at path, loading the allocations the
// file holds (none if it does not exist yet). The directory must exist. A file written
// for another subnet is an ErrInvalid error: its addresses mean nothing in this one, so
// the caller decides (typically, after the node's subnet changed, it removes the file
// and recreates its pods). The loaded owners are not in flight: a Restore that does
// not list them releases them.
func OpenPool(path, cidr string) (*Pool, error) {
	p, err := NewPool(cidr)
	if err != nil {
		return nil, err
	}
	p.path = path
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, p.write(p.encode())
	}
	if err != nil {
		return nil, fmt.Errorf("ipam pool: %w", err)
	}
	var f poolFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("ipam pool %s: %v: %w", path, err, ErrInvalid)
	}
	if f.Version != poolFileVersion {
		return nil, fmt.Errorf("ipam pool %s: version %d, want %d: %w", path, f.Version, poolFileVersion, ErrInvalid)
	}
	if fp, err := netip.ParsePrefix(f.CIDR); err != nil || fp.Masked() != p.prefix {
		return nil, fmt.Errorf("ipam pool %s: holds subnet %q, not %s: %w", path, f.CIDR, p.prefix, ErrInvalid)
	}
	for owner, s := range f.Owners {
		off := offsetOf(p.prefix, net.ParseIP(s))
		if _, err := p.r.reserve(owner, off); err != nil {
			return nil, fmt.Errorf("ipam pool %s: owner %q address %q: %w", path, owner, s, err)
		}
	}
	if off := offsetOf(p.prefix, net.ParseIP(f.Next)); off >= 0 {
		p.r.next = off
	}
	p.r.fresh = map[string]struct{}{}
	return p, nil
}

// CIDR returns the pool's subnet, e.g. "10.244.1.0/24".
func (p *Pool) CIDR() string { return p.prefix.String() }

// Gateway returns the subnet's first host address, reserved for the node's bridge.
func (p *Pool) Gateway() net.IP { return toIP(addrAt(p.prefix, 1)) }

// GatewayCIDR returns the gateway with the subnet's prefix length ("10.244.1.1/24"),
// the address to put on the bridge.
func (p *Pool) GatewayCIDR() string {
	return netip.PrefixFrom(addrAt(p.prefix, 1), p.prefix.Bits()).String()
}

// Contains reports whether ip is in the pool's subnet.
func (p *Pool) Contains(ip net.IP) bool { return offsetOf(p.prefix, ip) >= 0 }

// Allocate returns owner's address, picking a free one if it has none. When a file
// backs the pool, the new allocation is on disk before Allocate returns.
func (p *Pool) Allocate(owner string) (net.IP, error) {
	p.mu.Lock()
	off, created, err := p.r.allocate(owner)
	if err != nil {
		p.mu.Unlock()
		return nil, fmt.Errorf("pod subnet %s: %w", p.prefix, err)
	}
	if created {
		p.changes++
	}
	// An owner allocated by a call still writing is on disk only once that write is.
	n := p.changes
	p.mu.Unlock()
	if err := p.persist(n); err != nil {
		if created {
			p.unallocate(owner, off)
		}
		return nil, err
	}
	return toIP(addrAt(p.prefix, off)), nil
}

// unallocate takes back an allocation whose write failed, unless the owner's address
// changed since.
func (p *Pool) unallocate(owner string, off int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.r.lookup(owner); ok && cur == off {
		p.r.release(owner)
		p.changes++
	}
}

// AllocatePreferring is Allocate that first tries want, if it is in the subnet and
// free: a VM started again asks for the address it had, since its guest may keep the
// address it was first given (as an OpenStack port keeps its fixed IP).
func (p *Pool) AllocatePreferring(owner string, want net.IP) (net.IP, error) {
	p.mu.Lock()
	if _, has := p.r.lookup(owner); !has && want != nil {
		if off := offsetOf(p.prefix, want); off >= 0 {
			if _, err := p.r.reserve(owner, off); err == nil {
				p.changes++
				n := p.changes
				p.mu.Unlock()
				if err := p.persist(n); err != nil {
					p.unallocate(owner, off)
					return nil, err
				}
				return toIP(addrAt(p.prefix, off)), nil
			}
		}
	}
	p.mu.Unlock()
	return p.Allocate(owner)
}

// Release frees owner's address; releasing an owner without one does nothing.
func (p *Pool) Release(owner string) error {
	p.mu.Lock()
	off, ok := p.r.release(owner)
	if !ok {
		p.mu.Unlock()
		return nil
	}
	p.changes++
	n := p.changes
	p.mu.Unlock()
	if err := p.persist(n); err != nil {
		// Given back, unless the owner or another took an address since.
		p.mu.Lock()
		_, has := p.r.lookup(owner)
		if _, taken := p.r.byOff[off]; !has && !taken {
			p.r.set(owner, off)
			p.changes++
		}
		p.mu.Unlock()
		return err
	}
	return nil
}

// Lookup returns owner's address, if it has one.
func (p *Pool) Lookup(owner string) (net.IP, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	off, ok := p.r.lookup(owner)
	if !ok {
		return nil, false
	}
	return toIP(addrAt(p.prefix, off)), true
}

// Allocations returns a copy of every owner's address.
func (p *Pool) Allocations() map[string]net.IP {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]net.IP{}
	for o, off := range p.r.snapshot() {
		m[o] = toIP(addrAt(p.prefix, off))
	}
	return m
}

// Free returns how many addresses are left.
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.r.free()
}

// Restore reconciles the pool with the API's view, known: owner (pod UID) → reported
// address (status.podIP), nil for a pod that is on this node but has no address
// reported yet. The rules are those of the package documentation; the returned owners
// lost their address and their networking should be torn down. If the file cannot be
// written the pool is left as it was.
func (p *Pool) Restore(known map[string]net.IP) (released []string, err error) {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	offs := make(map[string]int, len(known))
	for o, ip := range known {
		offs[o] = offsetOf(p.prefix, ip)
	}
	before := p.r.clone()
	released = p.r.restore(offs)
	if err := p.write(p.encode()); err != nil {
		p.r = before
		return nil, err
	}
	p.changes++
	p.saved = p.changes
	return released, nil
}

// persist returns once the file holds the pool as of change n or later. The caller
// does not hold mu; callers that come while a write is in progress share the next.
func (p *Pool) persist(n uint64) error {
	if p.path == "" {
		return nil
	}
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	if p.saved >= n {
		return nil
	}
	p.mu.Lock()
	data, at := p.encode(), p.changes
	p.mu.Unlock()
	if err := p.write(data); err != nil {
		return err
	}
	p.saved = at
	return nil
}

// encode is the pool's file content; the caller holds mu.
func (p *Pool) encode() []byte {
	f := poolFile{
		Version: poolFileVersion,
		CIDR:    p.prefix.String(),
		Next:    addrAt(p.prefix, p.r.next).String(),
		Owners:  map[string]string{},
	}
	for o, off := range p.r.byOwner {
		f.Owners[o] = addrAt(p.prefix, off).String()
	}
	data, _ := json.MarshalIndent(f, "", "  ") // strings only: it cannot fail
	return append(data, '\n')
}

// write replaces the pool's file with data, if the pool has one; the caller holds
// saveMu, or is the only user of the pool.
func (p *Pool) write(data []byte) error {
	if p.path == "" {
		return nil
	}
	if err := atomicfile.WriteFile(p.path, data, 0o600); err != nil {
		return fmt.Errorf("ipam pool: %w", err)
	}
	return nil
}
