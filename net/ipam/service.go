package ipam

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// ServiceIPs hands out Service virtual IPs from the service CIDR. The network and
// broadcast addresses are never handed out; the first host address (10.96.0.1 in
// DefaultServiceCIDR) is kept for the API's "kubernetes" Service: Allocate skips it,
// Reserve grants it. State lives in memory only; the API server persists the addresses
// in the Service objects and calls Restore at start. A ServiceIPs is safe for
// concurrent use.
type ServiceIPs struct {
	mu     sync.Mutex
	prefix netip.Prefix
	r      *ranges
}

// NewServiceIPs returns the allocator of cidr, an IPv4 range of /30 or larger.
func NewServiceIPs(cidr string) (*ServiceIPs, error) {
	p, err := parseV4Prefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("service CIDR: %w", err)
	}
	if p.Bits() > 30 {
		return nil, fmt.Errorf("service CIDR %s: smaller than /30: %w", p, ErrInvalid)
	}
	size := prefixSize(p)
	forbid := func(off int) bool { return off == 0 || off == size-1 }
	skip := func(off int) bool { return off == 1 }
	return &ServiceIPs{prefix: p, r: newRanges(size, forbid, skip)}, nil
}

// CIDR returns the service CIDR, masked.
func (s *ServiceIPs) CIDR() string { return s.prefix.String() }

// KubernetesIP returns the address kept for the "kubernetes" Service.
func (s *ServiceIPs) KubernetesIP() net.IP { return toIP(addrAt(s.prefix, 1)) }

// Contains reports whether ip is in the service CIDR.
func (s *ServiceIPs) Contains(ip net.IP) bool { return offsetOf(s.prefix, ip) >= 0 }

// Allocate returns owner's address, picking a free one if it has none.
func (s *ServiceIPs) Allocate(owner string) (net.IP, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off, _, err := s.r.allocate(owner)
	if err != nil {
		return nil, fmt.Errorf("service CIDR %s: %w", s.prefix, err)
	}
	return toIP(addrAt(s.prefix, off)), nil
}

// Reserve gives owner exactly ip (a clusterIP the user asked for, or KubernetesIP),
// moving it from any address it held. ErrConflict means another owner holds ip,
// ErrInvalid that ip is outside the range or reserved.
func (s *ServiceIPs) Reserve(owner string, ip net.IP) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.r.reserve(owner, offsetOf(s.prefix, ip)); err != nil {
		return fmt.Errorf("service IP %s: %w", ip, err)
	}
	return nil
}

// Release frees owner's address; releasing an owner without one does nothing.
func (s *ServiceIPs) Release(owner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.release(owner)
}

// Lookup returns owner's address, if it has one.
func (s *ServiceIPs) Lookup(owner string) (net.IP, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off, ok := s.r.lookup(owner)
	if !ok {
		return nil, false
	}
	return toIP(addrAt(s.prefix, off)), true
}

// Restore reconciles the allocator with the Services the API holds: owner → its
// clusterIP, nil for a Service known without one (a headless Service is simply left
// out). See the package documentation for the rules; the returned owners lost the
// address they held or claimed.
func (s *ServiceIPs) Restore(known map[string]net.IP) (released []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	offs := make(map[string]int, len(known))
	for o, ip := range known {
		offs[o] = offsetOf(s.prefix, ip)
	}
	return s.r.restore(offs)
}

// Default node port range, as Kubernetes has it.
const (
	DefaultNodePortMin = 30000
	DefaultNodePortMax = 32767
)

// NodePorts hands out node ports from an inclusive range. A Service with several ports
// uses one owner per port (e.g. "ns/name:http"). State lives in memory only, like
// ServiceIPs. A NodePorts is safe for concurrent use.
type NodePorts struct {
	mu       sync.Mutex
	min, max int
	r        *ranges
}

// NewNodePorts returns the allocator of the ports min to max inclusive.
func NewNodePorts(min, max int) (*NodePorts, error) {
	if min < 1 || max > 65535 || min > max {
		return nil, fmt.Errorf("node port range %d-%d: %w", min, max, ErrInvalid)
	}
	return &NodePorts{min: min, max: max, r: newRanges(max-min+1, nil, nil)}, nil
}

// Range returns the inclusive port range.
func (n *NodePorts) Range() (min, max int) { return n.min, n.max }

func (n *NodePorts) off(port int) int {
	if port < n.min || port > n.max {
		return -1
	}
	return port - n.min
}

// Allocate returns owner's port, picking a free one if it has none.
func (n *NodePorts) Allocate(owner string) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	off, _, err := n.r.allocate(owner)
	if err != nil {
		return 0, fmt.Errorf("node ports %d-%d: %w", n.min, n.max, err)
	}
	return n.min + off, nil
}

// Reserve gives owner exactly port (a nodePort the user asked for), moving it from any
// port it held. ErrConflict means another owner holds it, ErrInvalid that it is
// outside the range.
func (n *NodePorts) Reserve(owner string, port int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.r.reserve(owner, n.off(port)); err != nil {
		return fmt.Errorf("node port %d: %w", port, err)
	}
	return nil
}

// Release frees owner's port; releasing an owner without one does nothing.
func (n *NodePorts) Release(owner string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.r.release(owner)
}

// Lookup returns owner's port, if it has one.
func (n *NodePorts) Lookup(owner string) (int, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	off, ok := n.r.lookup(owner)
	if !ok {
		return 0, false
	}
	return n.min + off, true
}

// Restore reconciles the allocator with the Services the API holds: owner → its node
// port, 0 for an owner known without one. See the package documentation for the rules.
func (n *NodePorts) Restore(known map[string]int) (released []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	offs := make(map[string]int, len(known))
	for o, port := range known {
		offs[o] = n.off(port)
	}
	return n.r.restore(offs)
}
