package podnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/net/bridge"
)

// A VM joins the pod network as a pod does, with a tap on the node bridge in place
// of a veth: its address comes from the same pool (keyed by its launcher pod's UID,
// so PodIP and the endpoints see it as the pod's), and the guest is told it through
// its cloud-init network-config rather than having it set from outside.

// tapName is a VM's tap: stable per pod, "cbxt" so that it is told from a veth and
// still found by whatever looks for cloudbox's links.
func tapName(podUID string) string {
	sum := sha256.Sum256([]byte(podUID))
	return "cbxt" + hex.EncodeToString(sum[:])[:10]
}

// SetupTap gives the pod (a VM's launcher) an address and a tap on the bridge. The
// address is want when that is free (the VM's address before it was stopped), else
// the next free one.
func (n *Network) SetupTap(ctx context.Context, podUID string, want net.IP) (*agent.Tap, error) {
	select {
	case <-n.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("the node's pod network is not ready (no pod subnet yet): %w", ctx.Err())
	}
	n.mu.Lock()
	bc, pool := n.bridge, n.pool
	n.mu.Unlock()
	ip, err := pool.AllocatePreferring(podUID, want)
	if err != nil {
		return nil, err
	}
	name := tapName(podUID)
	if err := bridge.AttachTap(bc, name); err != nil {
		_ = pool.Release(podUID)
		return nil, err
	}
	ones, _ := bc.Subnet.Mask.Size()
	return &agent.Tap{Name: name, IP: ip, PrefixLen: ones, Gateway: n.Gateway()}, nil
}

// TeardownTap removes the pod's tap and frees its address.
func (n *Network) TeardownTap(ctx context.Context, podUID string) error {
	return errors.Join(bridge.DetachTap(tapName(podUID)), n.Teardown(ctx, podUID))
}
