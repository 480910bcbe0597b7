// Package podnet gives pods their addresses on this node: the cbx0 bridge, the
// firewall chains, the node's address pool, and a veth per pod sandbox. It joins the
// net/ packages (which know nothing of the control plane) for the agent and its
// drivers (agent.PodNetwork), and keeps the node's Service rules (services.go) and
// cluster DNS (dns.go) in step with the API.
package podnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/internal/atomicfile"
	"github.com/cloudbox/cloudbox/net/bridge"
	"github.com/cloudbox/cloudbox/net/dns"
	"github.com/cloudbox/cloudbox/net/firewall"
	"github.com/cloudbox/cloudbox/net/ipam"
)

// Config configures the node's pod network.
type Config struct {
	// Bridge is the node bridge's name. If empty, cbx0.
	Bridge string
	// ClusterCIDR is every pod address in the cluster (for masquerade). Required.
	ClusterCIDR string
	// StateDir keeps the address pool's file.
	StateDir string
	Logger   *zap.Logger
}

// Network attaches pod sandboxes. Setup waits until Start has run (the node's subnet
// comes from the master after the node registers). It is safe for concurrent use.
type Network struct {
	cfg   Config
	ready chan struct{}

	mu     sync.Mutex
	bridge bridge.Config
	pool   *ipam.Pool
	// released are pods torn down before Start: after a restart the agent
	// removes the pods deleted while it was down before the node's subnet is
	// known, and their addresses must still go back to the pool.
	released []string
	// tornDown are the pods torn down before Reconcile: the API may still
	// list them (the agent deletes a pod from the API after its teardown), and
	// Reconcile must not give them their address back.
	tornDown   map[string]bool
	reconciled bool
	// saved are the addresses the pool's file held when the agent started: until
	// Start opens the pool (the node's subnet comes from the master), PodIP
	// answers from them, so a restarted agent does not report its running pods
	// without their address.
	saved map[string]string
}

var _ agent.PodNetwork = (*Network)(nil)

// New returns a network that is not started yet.
func New(cfg Config) *Network {
	if cfg.Bridge == "" {
		cfg.Bridge = bridge.DefaultBridge
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	n := &Network{cfg: cfg, ready: make(chan struct{})}
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, poolFile)); err == nil {
		var f struct {
			Owners map[string]string `json:"owners"`
		}
		if json.Unmarshal(b, &f) == nil {
			n.saved = f.Owners
		}
	}
	return n
}

// poolFile in the state dir is the node's address pool.
const poolFile = "ipam.json"

// Start sets the node up for podCIDR: bridge, forwarding, firewall chains, pool.
// After an error it may be called again; it must not be called after it succeeded.
func (n *Network) Start(podCIDR string) error {
	_, subnet, err := net.ParseCIDR(podCIDR)
	if err != nil {
		return fmt.Errorf("pod subnet %q: %w", podCIDR, err)
	}
	// The bridge's name tells `server --cleanup` that this data dir set up host
	// networking, and what to remove: written first, so that a Start that fails
	// half way leaves nothing cleanup does not know of.
	if err := atomicfile.WriteFile(filepath.Join(n.cfg.StateDir, bridgeFile), []byte(n.cfg.Bridge), 0o600); err != nil {
		return err
	}
	bc := bridge.Config{Bridge: n.cfg.Bridge, Subnet: subnet}
	if err := bridge.EnsureBridge(bc); err != nil {
		return err
	}
	if err := firewall.EnableIPForward(); err != nil {
		return err
	}
	if err := firewall.Ensure(firewall.Config{ClusterCIDR: n.cfg.ClusterCIDR, Bridge: n.cfg.Bridge}); err != nil {
		return err
	}
	pool, err := ipam.OpenPool(filepath.Join(n.cfg.StateDir, poolFile), podCIDR)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.bridge, n.pool = bc, pool
	n.saved = nil
	released := n.released
	n.released = nil
	var errs []error
	for _, uid := range released {
		errs = append(errs, pool.Release(uid))
	}
	n.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		n.cfg.Logger.Warn("releasing the addresses of pods removed before the network started", zap.Error(err))
	}
	close(n.ready)
	n.cfg.Logger.Info("pod network ready", zap.String("bridge", n.cfg.Bridge), zap.String("podCIDR", podCIDR))
	return nil
}

// hostVeth is a pod's host-side interface name: stable per pod, so a retry after a
// crash finds the same pair.
func hostVeth(podUID string) string {
	sum := sha256.Sum256([]byte(podUID))
	return "cbx" + hex.EncodeToString(sum[:])[:11]
}

// Setup gives the pod sandbox at netnsPath an address and a veth on the bridge.
func (n *Network) Setup(ctx context.Context, podUID, netnsPath string) (net.IP, error) {
	select {
	case <-n.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("the node's pod network is not ready (no pod subnet yet): %w", ctx.Err())
	}
	n.mu.Lock()
	bc, pool := n.bridge, n.pool
	n.mu.Unlock()
	ip, err := pool.Allocate(podUID)
	if err != nil {
		return nil, err
	}
	if err := bridge.Attach(bc, netnsPath, bridge.DefaultPodIf, ip, hostVeth(podUID)); err != nil {
		_ = pool.Release(podUID)
		return nil, err
	}
	return ip, nil
}

// Teardown removes the pod's veth and frees its address.
func (n *Network) Teardown(ctx context.Context, podUID string) error {
	err := bridge.Detach(hostVeth(podUID))
	n.mu.Lock()
	pool := n.pool
	if pool == nil {
		n.released = append(n.released, podUID)
		delete(n.saved, podUID)
	}
	if !n.reconciled {
		if n.tornDown == nil {
			n.tornDown = map[string]bool{}
		}
		n.tornDown[podUID] = true
	}
	n.mu.Unlock()
	if pool == nil {
		return err
	}
	return errors.Join(err, pool.Release(podUID))
}

// Reconcile makes the node's pool agree with the API after a start, by
// ipam.Pool.Restore's rules: known maps the UID of every pod bound to this
// node to its reported status.podIP (nil when none is reported yet). Addresses
// of pods the API no longer knows go back to the pool, and their veths (or taps) are
// removed; a pod whose address another pod holds in the API loses it. Read
// known after Start has returned, so that no pod set up since counts as gone.
func (n *Network) Reconcile(known map[string]net.IP) error {
	select {
	case <-n.ready:
	default:
		return errors.New("pod network not started")
	}
	n.mu.Lock()
	pool := n.pool
	gone := n.tornDown
	n.tornDown, n.reconciled = nil, true
	n.mu.Unlock()
	for uid := range gone {
		delete(known, uid)
	}
	released, err := pool.Restore(known)
	if err != nil {
		return err
	}
	var errs []error
	for _, uid := range released {
		n.cfg.Logger.Info("released a pod address the API does not know", zap.String("pod_uid", uid))
		// A pod has a veth, a VM's launcher a tap; neither is there for the other.
		errs = append(errs, bridge.Detach(hostVeth(uid)), bridge.DetachTap(tapName(uid)))
	}
	return errors.Join(errs...)
}

// Gateway is the bridge's address (where the node's DNS answers), or nil before Start.
func (n *Network) Gateway() net.IP {
	select {
	case <-n.ready:
	default:
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return bridge.Gateway(n.bridge.Subnet)
}

// ResolvConf is the resolv.conf of a pod in namespace: the node's cluster DNS and the
// cluster search path. A pod's files are written before its sandbox is attached, so
// this waits for Start as Setup does (up to resolvConfWait); nil if it never came.
func (n *Network) ResolvConf(namespace string) []byte {
	select {
	case <-n.ready:
	case <-time.After(resolvConfWait):
	}
	gw := n.Gateway()
	if gw == nil {
		return nil
	}
	return dns.ResolvConf(gw.String(), namespace)
}

// Ready is closed once Start has run.
func (n *Network) Ready() <-chan struct{} { return n.ready }

// PodIP is the pod's address, or "".
func (n *Network) PodIP(podUID string) string {
	select {
	case <-n.ready:
	default:
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.saved[podUID]
	}
	n.mu.Lock()
	pool := n.pool
	n.mu.Unlock()
	if ip, ok := pool.Lookup(podUID); ok {
		return ip.String()
	}
	return ""
}

// resolvConfWait bounds how long a pod's files wait for the node's network.
const resolvConfWait = 2 * time.Minute

// bridgeFile in the state dir records that the node's network was set up.
const bridgeFile = "bridge"

// Cleanup removes the firewall chains and the bridge if the agent whose state dir
// this is set them up: the network part of `cloudbox server --cleanup`, after every
// pod is gone.
func Cleanup(stateDir string) error {
	b, err := os.ReadFile(filepath.Join(stateDir, bridgeFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return errors.Join(firewall.Cleanup(), bridge.RemoveBridge(strings.TrimSpace(string(b))))
}
