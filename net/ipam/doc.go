// Package ipam hands out the addresses of the cloudbox network: one pod subnet per node
// carved from the cluster CIDR (Subnets), the pod addresses inside a node's subnet (Pool,
// persisted to a local file), Service virtual IPs (ServiceIPs) and node ports (NodePorts).
//
// Every allocator is keyed by an owner string chosen by the caller (a pod UID, a
// "namespace/service" name, ...): allocating again for the same owner returns what it
// already holds, so a retried create never takes a second address. Allocation is
// next-fit from a cursor that moves forward, so a released address is not handed out
// again until the rest of the range has been used, which keeps stale ARP, conntrack and
// DNS entries of a deleted pod from reaching its successor.
//
// # Restore: the API's view against the allocator's
//
// The API server is the source of truth for addresses that have been reported (a pod's
// status.podIP, a Service's spec.clusterIP and nodePorts); an allocator's own state (the
// Pool's file, or nothing for the in-memory allocators) may be ahead of it (allocated, not
// yet reported) or behind it, and the caller's read of the API may be older than the
// allocator's latest changes. Restore(known) reconciles the two with these rules:
//
//  1. An owner allocated (Allocate, Reserve) by this process since the previous Restore,
//     or since the allocator was created or opened, is in flight: it keeps what it
//     holds, whatever known says of it, because known may predate that allocation. An
//     owner released since then stays released, for the same reason.
//  2. Any other owner that known maps to an address holds exactly that address: the
//     API wins, and on a clash with an in-flight owner too (that owner loses its
//     address). If known maps two owners to one address, the owner that sorts first
//     keeps it.
//  3. Any other owner that known lists without an address (a nil IP, port 0: the API
//     knows the owner but has no address reported, e.g. the agent crashed between
//     allocating and reporting) keeps the address the allocator holds for it, if any.
//     An address that the allocator cannot hold (outside the range, or reserved)
//     counts as no address.
//  4. Every other owner is released: the API no longer knows it (the pod was deleted
//     while the agent was down).
//
// Restore returns, sorted, the owners the allocator held or known claimed that end up
// without the address they had or claimed; the caller should tear down whatever
// networking those owners still have. After Restore nothing is in flight, so an owner
// that a later Restore again does not list is released then: a periodic Restore is a
// safe garbage collector as long as the view it is given was read after the previous
// Restore returned.
//
// Only IPv4 is supported. All types are safe for concurrent use.
package ipam

import "errors"

var (
	// ErrExhausted means every address (or port, or subnet) of the range is taken.
	ErrExhausted = errors.New("ipam: range exhausted")
	// ErrInvalid means a CIDR, address or port is malformed or outside what the
	// allocator manages, or a state file does not belong to the pool opening it.
	ErrInvalid = errors.New("ipam: invalid")
	// ErrConflict means a specific address or port asked for is held by another owner.
	ErrConflict = errors.New("ipam: already allocated")
)
