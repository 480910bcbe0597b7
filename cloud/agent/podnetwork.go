package agent

import (
	"context"
	"net"
)

// PodNetwork is the node's pod network as the agent and both drivers see it: the
// container driver attaches a pod's network namespace with a veth (Setup), the VM
// driver a launcher pod's QEMU with a tap (SetupTap), and both take their address
// from the one pool, so the agent reports either as the pod's IP. podnet.Network
// implements it. Implementations are safe for concurrent use.
type PodNetwork interface {
	// Setup attaches the sandbox of pod podUID, whose network namespace is at
	// netnsPath, and returns its address. It waits until the node's subnet is known.
	Setup(ctx context.Context, podUID, netnsPath string) (net.IP, error)
	// Teardown detaches the pod and frees its address. Tearing down a pod that is
	// not attached is not an error.
	Teardown(ctx context.Context, podUID string) error
	// SetupTap gives a VM's launcher pod an address and a tap; the address is want
	// when that is free (the VM's address before it was stopped).
	SetupTap(ctx context.Context, podUID string, want net.IP) (*Tap, error)
	// TeardownTap removes the pod's tap and frees its address.
	TeardownTap(ctx context.Context, podUID string) error
	// PodIP is the pod's address, or "" if it has none.
	PodIP(podUID string) string
	// ResolvConf is the /etc/resolv.conf of a pod in namespace (the cluster DNS),
	// or nil for the host's.
	ResolvConf(namespace string) []byte
}

// Tap is a VM's place on the pod network.
type Tap struct {
	// Name is the tap device, for QEMU's -netdev tap,ifname=.
	Name string
	// IP, PrefixLen and Gateway are what the guest configures on its interface.
	IP        net.IP
	PrefixLen int
	Gateway   net.IP
}
