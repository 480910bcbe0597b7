// Package bridge connects pods to a node's Linux bridge.
//
// A node has one bridge (by default cbx0) that carries the first address of the
// node's pod subnet; that address is every pod's gateway. Each pod gets a veth
// pair: one end moves into the pod's network namespace as eth0 with the pod's
// address and a default route via the gateway, the other stays on the host and
// is enslaved to the bridge.
//
// All functions act on the network namespace of the calling OS thread (the
// host's in production). They are idempotent, so an agent that crashed half way
// through can simply call them again. They are safe for concurrent use as long
// as callers do not work on the same pod (host veth) at the same time.
package bridge

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// DefaultBridge is the bridge name used when Config.Bridge is empty.
const DefaultBridge = "cbx0"

// Config describes a node's pod bridge.
type Config struct {
	// Bridge is the bridge's interface name. If empty, DefaultBridge.
	Bridge string
	// Subnet is the node's pod subnet (IPv4). Its first address is the gateway
	// and is assigned to the bridge. It must not be nil.
	Subnet *net.IPNet
	// MTU is applied to the bridge and to both ends of every veth pair.
	// If zero, the kernel default (1500) is kept.
	MTU int
}

func (c Config) name() string {
	if c.Bridge == "" {
		return DefaultBridge
	}
	return c.Bridge
}

// gatewayNet returns the gateway address with the subnet's prefix length.
func (c Config) gatewayNet() (*net.IPNet, error) {
	if c.Subnet == nil {
		return nil, errors.New("bridge: config has no subnet")
	}
	gw := Gateway(c.Subnet)
	if gw == nil {
		return nil, fmt.Errorf("bridge: subnet %s is not a usable IPv4 subnet", c.Subnet)
	}
	return &net.IPNet{IP: gw, Mask: c.Subnet.Mask}, nil
}

// Gateway returns the first address of subnet (network address + 1), which
// cloudbox assigns to the bridge. It returns nil if subnet is nil, not IPv4, or
// too small to hold a gateway and a pod (prefix longer than /30).
func Gateway(subnet *net.IPNet) net.IP {
	if subnet == nil {
		return nil
	}
	ip4 := subnet.IP.To4()
	ones, bits := subnet.Mask.Size()
	if ip4 == nil || bits != 32 || ones > 30 {
		return nil
	}
	gw := make(net.IP, 4)
	copy(gw, ip4.Mask(subnet.Mask))
	gw[3]++
	return gw
}

// EnsureBridge creates the bridge described by cfg or repairs an existing one:
// MTU, the gateway address (other IPv4 addresses are removed) and the up flag.
// A bridge that is already correct is left untouched. An existing interface
// of the same name that is not a bridge is an error, never deleted.
func EnsureBridge(cfg Config) error {
	gw, err := cfg.gatewayNet()
	if err != nil {
		return err
	}
	name := cfg.name()
	link, err := netlink.LinkByName(name)
	if err != nil {
		if !isNotFound(err) {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.HardwareAddr = BridgeMAC(gw.IP)
		if cfg.MTU > 0 {
			attrs.MTU = cfg.MTU
		}
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return fmt.Errorf("bridge %s: create: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("bridge %s: interface exists with type %q, not bridge", name, link.Type())
	}
	if cfg.MTU > 0 && link.Attrs().MTU != cfg.MTU {
		if err := netlink.LinkSetMTU(link, cfg.MTU); err != nil {
			return fmt.Errorf("bridge %s: set mtu %d: %w", name, cfg.MTU, err)
		}
	}
	// A bridge whose MAC was never set takes the lowest MAC of its ports, so it
	// changes as pods come and go, and pods keep sending to the old one until
	// their ARP entry for the gateway expires (about 30 s of lost DNS queries
	// and egress). A MAC set once stays.
	if mac := BridgeMAC(gw.IP); link.Attrs().HardwareAddr.String() != mac.String() {
		if err := netlink.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("bridge %s: set mac %s: %w", name, mac, err)
		}
	}
	if err := ensureOnlyAddr(hostNL, link, gw); err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("bridge %s: set up: %w", name, err)
		}
	}
	return nil
}

// BridgeMAC is the fixed MAC of the bridge whose gateway is gw: locally
// administered (0a:58, as Kubernetes network plugins use) followed by the
// address, so that it is unique per node subnet and the same after a restart.
func BridgeMAC(gw net.IP) net.HardwareAddr {
	v4 := gw.To4()
	return net.HardwareAddr{0x0a, 0x58, v4[0], v4[1], v4[2], v4[3]}
}

// RemoveBridge deletes the bridge named name (DefaultBridge if empty). A
// missing bridge is not an error. Taps attached to it (VMs') are deleted; veths
// still attached stay, detached (they go with their pod's namespace).
func RemoveBridge(name string) error {
	if name == "" {
		name = DefaultBridge
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("bridge %s: interface has type %q, not bridge; not removing", name, link.Type())
	}
	// VMs' taps are persistent links (QEMU only opens them): they go with the bridge.
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			if _, tap := l.(*netlink.Tuntap); tap && l.Attrs().MasterIndex == link.Attrs().Index {
				if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
					return fmt.Errorf("bridge %s: delete tap %s: %w", name, l.Attrs().Name, err)
				}
			}
		}
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("bridge %s: delete: %w", name, err)
	}
	return nil
}

// hostNL is a netlink handle on the calling thread's namespace: a zero Handle
// opens a socket per request, as the package-level functions do.
var hostNL = &netlink.Handle{}

// ensureOnlyAddr makes want the only IPv4 address on link, changing nothing
// when that is already so.
func ensureOnlyAddr(h *netlink.Handle, link netlink.Link, want *net.IPNet) error {
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	found := false
	for _, a := range addrs {
		if a.IPNet != nil && a.IPNet.String() == want.String() {
			found = true
			continue
		}
		a := a
		if err := h.AddrDel(link, &a); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove stale address %s: %w", a.IPNet, err)
		}
	}
	if !found {
		if err := h.AddrReplace(link, &netlink.Addr{IPNet: want}); err != nil {
			return fmt.Errorf("add address %s: %w", want, err)
		}
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, errNoSuchDevice)
}
