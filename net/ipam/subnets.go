package ipam

import (
	"fmt"
	"net/netip"
	"sort"
)

// Default ranges of a cloudbox cluster.
const (
	DefaultClusterCIDR  = "10.244.0.0/16"
	DefaultNodeMaskBits = 24
	DefaultServiceCIDR  = "10.96.0.0/16"
)

// Subnets splits the cluster CIDR into equal node subnets. It holds no state: the
// subnets already assigned are read from the Node objects by the caller and passed to
// Allocate, so the API server's store stays the only record. A Subnets is immutable and
// safe for concurrent use; callers must still serialize Allocate with the write that
// records its result (two concurrent Allocates given the same taken list return the
// same subnet).
type Subnets struct {
	cluster netip.Prefix
	bits    int
}

// SplitCluster returns the allocator of /nodeMaskBits subnets of clusterCIDR
// (DefaultClusterCIDR split into /24s: 256 nodes of 253 pods). nodeMaskBits must be
// at least the cluster's prefix length and at most 30, the smallest subnet that holds
// a gateway and one pod.
func SplitCluster(clusterCIDR string, nodeMaskBits int) (*Subnets, error) {
	p, err := parseV4Prefix(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR: %w", err)
	}
	if nodeMaskBits < p.Bits() || nodeMaskBits > 30 {
		return nil, fmt.Errorf("node mask /%d for cluster CIDR %s: must be between /%d and /30: %w",
			nodeMaskBits, p, p.Bits(), ErrInvalid)
	}
	return &Subnets{cluster: p, bits: nodeMaskBits}, nil
}

// Cluster returns the cluster CIDR, masked.
func (s *Subnets) Cluster() string { return s.cluster.String() }

// Len returns the number of node subnets.
func (s *Subnets) Len() int { return 1 << (s.bits - s.cluster.Bits()) }

// Contains reports whether cidr is exactly one of the node subnets, as a subnet
// recorded on a Node must be (it may not be after the cluster CIDR flag changed).
func (s *Subnets) Contains(cidr string) bool {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || p != p.Masked() {
		return false
	}
	return p.Bits() == s.bits && s.cluster.Contains(p.Addr())
}

// Allocate returns the lowest node subnet that overlaps none of taken, the subnets
// already assigned to other nodes. The result depends only on taken, so replaying an
// allocation gives the same answer. Entries of taken outside the cluster CIDR are
// ignored and entries of another size block every node subnet they overlap; a
// malformed entry is an ErrInvalid error, since ignoring it could double a subnet.
// The caller checks first whether the node already has a subnet; node only names it
// in errors. ErrExhausted means every subnet is taken.
func (s *Subnets) Allocate(node string, taken []string) (string, error) {
	type span struct{ start, n int }
	var spans []span
	base := u32(s.cluster.Addr())
	for _, t := range taken {
		p, err := netip.ParsePrefix(t)
		if err != nil || !p.Addr().Is4() {
			return "", fmt.Errorf("node %s: taken subnet %q: %w", node, t, ErrInvalid)
		}
		p = p.Masked()
		if !p.Overlaps(s.cluster) {
			continue
		}
		if p.Bits() <= s.cluster.Bits() {
			return "", fmt.Errorf("node %s: %s covers the cluster CIDR %s: %w", node, p, s.cluster, ErrExhausted)
		}
		sp := span{start: int((u32(p.Addr()) - base) >> (32 - s.bits)), n: 1}
		if p.Bits() < s.bits {
			sp.n = 1 << (s.bits - p.Bits())
		}
		spans = append(spans, sp)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	next := 0
	for _, sp := range spans {
		if sp.start > next {
			break
		}
		if end := sp.start + sp.n; end > next {
			next = end
		}
	}
	if next >= s.Len() {
		return "", fmt.Errorf("node %s: all %d subnets of %s are taken: %w", node, s.Len(), s.cluster, ErrExhausted)
	}
	return netip.PrefixFrom(fromU32(base+uint32(next)<<(32-s.bits)), s.bits).String(), nil
}
