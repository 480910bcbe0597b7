package bridge

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// DefaultPodIf is the interface name used in the pod when Attach gets none.
const DefaultPodIf = "eth0"

// errNoSuchDevice is what the kernel answers for a link that is gone.
var errNoSuchDevice = syscall.ENODEV

// Attach connects the pod whose network namespace is at netnsPath (for
// example /proc/PID/ns/net or /run/netns/NAME) to the bridge of cfg, which
// must exist (see EnsureBridge).
//
// It creates a veth pair named hostVeth on the host side (unique per pod, at
// most 15 bytes) and ifName (DefaultPodIf if empty) in the pod, gives the pod
// end ip with the subnet's prefix and a default route via the gateway, brings
// lo and both ends up, and enslaves the host end to the bridge.
//
// Attach is idempotent: called again, for example after a crash half way, it
// keeps a pair that is already in place and fixes whatever is missing; a
// half-made pair whose ends do not match is deleted and made again.
func Attach(cfg Config, netnsPath, ifName string, ip net.IP, hostVeth string) error {
	gw, err := cfg.gatewayNet()
	if err != nil {
		return err
	}
	if ifName == "" {
		ifName = DefaultPodIf
	}
	if hostVeth == "" || len(hostVeth) > 15 {
		return fmt.Errorf("bridge: host veth name %q must have 1 to 15 bytes", hostVeth)
	}
	ip4 := ip.To4()
	if ip4 == nil || !cfg.Subnet.Contains(ip4) || ip4.Equal(gw.IP) || isNetworkOrBroadcast(ip4, cfg.Subnet) {
		return fmt.Errorf("bridge: pod address %s is not a usable address of %s", ip, cfg.Subnet)
	}
	br, err := netlink.LinkByName(cfg.name())
	if err != nil {
		return fmt.Errorf("bridge %s: %w", cfg.name(), err)
	}

	podNS, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return fmt.Errorf("pod netns %s: %w", netnsPath, err)
	}
	defer podNS.Close()
	pod, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return fmt.Errorf("pod netns %s: netlink: %w", netnsPath, err)
	}
	defer pod.Close()

	host, podLink, err := ensureVeth(cfg, pod, podNS, ifName, hostVeth)
	if err != nil {
		return fmt.Errorf("veth %s: %w", hostVeth, err)
	}

	// Host side: on the bridge, up.
	if host.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMaster(host, br); err != nil {
			return fmt.Errorf("veth %s: attach to %s: %w", hostVeth, cfg.name(), err)
		}
	}
	// Hairpin: a pod reaching a Service VIP that picks the pod itself gets
	// its packet back through the port it came in on (with br_netfilter the
	// DNAT happens on the bridge path); the bridge drops that unless the port
	// allows it, as the CNI bridge plugin's hairpinMode does.
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("veth %s: hairpin mode: %w", hostVeth, err)
	}
	if host.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(host); err != nil {
			return fmt.Errorf("veth %s: set up: %w", hostVeth, err)
		}
	}

	// Pod side: lo up, address, up, default route.
	lo, err := pod.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("pod netns %s: lo: %w", netnsPath, err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		if err := pod.LinkSetUp(lo); err != nil {
			return fmt.Errorf("pod netns %s: lo up: %w", netnsPath, err)
		}
	}
	addr := &net.IPNet{IP: ip4, Mask: cfg.Subnet.Mask}
	if err := ensureOnlyAddr(pod, podLink, addr); err != nil {
		return fmt.Errorf("pod %s: %w", ifName, err)
	}
	if podLink.Attrs().Flags&net.FlagUp == 0 {
		if err := pod.LinkSetUp(podLink); err != nil {
			return fmt.Errorf("pod %s: set up: %w", ifName, err)
		}
	}
	route := &netlink.Route{
		LinkIndex: podLink.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        gw.IP,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if err := pod.RouteReplace(route); err != nil {
		return fmt.Errorf("pod %s: default route via %s: %w", ifName, gw.IP, err)
	}
	return nil
}

func isNetworkOrBroadcast(ip net.IP, subnet *net.IPNet) bool {
	network := ip.Mask(subnet.Mask)
	bcast := make(net.IP, len(network))
	for i := range network {
		bcast[i] = network[i] | ^subnet.Mask[len(subnet.Mask)-len(network)+i]
	}
	return ip.Equal(network) || ip.Equal(bcast)
}

// ensureVeth returns the host end and pod end of the pair, making it if it is
// missing or broken.
func ensureVeth(cfg Config, pod *netlink.Handle, podNS netns.NsHandle, ifName, hostVeth string) (netlink.Link, netlink.Link, error) {
	host, podLink, ok, err := findPair(pod, ifName, hostVeth)
	if err != nil {
		return nil, nil, err
	}
	if ok {
		if cfg.MTU > 0 {
			if host.Attrs().MTU != cfg.MTU {
				if err := netlink.LinkSetMTU(host, cfg.MTU); err != nil {
					return nil, nil, fmt.Errorf("set mtu: %w", err)
				}
			}
			if podLink.Attrs().MTU != cfg.MTU {
				if err := pod.LinkSetMTU(podLink, cfg.MTU); err != nil {
					return nil, nil, fmt.Errorf("pod %s: set mtu: %w", ifName, err)
				}
			}
		}
		return host, podLink, nil
	}
	// Clear what a crash may have left: a host end whose peer is elsewhere, or
	// a pod interface of that name with no (matching) host end.
	if host != nil {
		if err := netlink.LinkDel(host); err != nil && !isNotFound(err) {
			return nil, nil, fmt.Errorf("delete stale host end: %w", err)
		}
	}
	if l, err := pod.LinkByName(ifName); err == nil {
		if err := pod.LinkDel(l); err != nil && !isNotFound(err) {
			return nil, nil, fmt.Errorf("delete stale pod %s: %w", ifName, err)
		}
	}

	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostVeth
	if cfg.MTU > 0 {
		attrs.MTU = cfg.MTU
	}
	// The peer is born inside the pod under its final name, so no temporary
	// name can collide on the host and nothing needs renaming.
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: ifName, PeerNamespace: netlink.NsFd(int(podNS))}
	if cfg.MTU > 0 {
		veth.PeerMTU = uint32(cfg.MTU)
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("create pair: %w", err)
	}
	host, podLink, ok, err = findPair(pod, ifName, hostVeth)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, errors.New("pair not found after creating it")
	}
	return host, podLink, nil
}

// findPair looks up both ends. ok is true when hostVeth is a veth whose peer
// is the pod's ifName. host is returned (non-nil) whenever hostVeth exists.
func findPair(pod *netlink.Handle, ifName, hostVeth string) (host, podLink netlink.Link, ok bool, err error) {
	host, err = netlink.LinkByName(hostVeth)
	if err != nil {
		if isNotFound(err) {
			return nil, nil, false, nil
		}
		return nil, nil, false, err
	}
	hv, isVeth := host.(*netlink.Veth)
	if !isVeth {
		return nil, nil, false, fmt.Errorf("host interface %s exists with type %q, not veth", hostVeth, host.Type())
	}
	podLink, err = pod.LinkByName(ifName)
	if err != nil {
		if isNotFound(err) {
			return host, nil, false, nil
		}
		return nil, nil, false, err
	}
	peerIndex, err := netlink.VethPeerIndex(hv)
	if err != nil {
		return nil, nil, false, fmt.Errorf("peer index: %w", err)
	}
	// Both directions must agree: an index alone could match an interface in
	// some other namespace.
	_, podIsVeth := podLink.(*netlink.Veth)
	if !podIsVeth || peerIndex != podLink.Attrs().Index || podLink.Attrs().ParentIndex != host.Attrs().Index {
		return host, nil, false, nil
	}
	return host, podLink, true, nil
}

// Detach removes the pod's veth pair by deleting its host end hostVeth; the
// kernel removes the pod end with it. A missing interface is not an error.
func Detach(hostVeth string) error {
	link, err := netlink.LinkByName(hostVeth)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("veth %s: %w", hostVeth, err)
	}
	if _, ok := link.(*netlink.Veth); !ok {
		return fmt.Errorf("veth %s: interface has type %q, not veth; not removing", hostVeth, link.Type())
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("veth %s: delete: %w", hostVeth, err)
	}
	return nil
}
