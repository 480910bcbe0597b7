package bridge

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// AttachTap makes a persistent tap device named tap (at most 15 bytes), enslaves it
// to the bridge of cfg (which must exist) with hairpin mode on, and brings it up: the
// host end of a VM's network card, which QEMU opens by name (script=no). A tap that
// is already there is kept, so a retry after a crash is harmless.
func AttachTap(cfg Config, tap string) error {
	br, err := netlink.LinkByName(cfg.name())
	if err != nil {
		return fmt.Errorf("bridge %s: %w", cfg.name(), err)
	}
	link, err := netlink.LinkByName(tap)
	switch {
	case isNotFound(err):
		t := &netlink.Tuntap{
			LinkAttrs: netlink.LinkAttrs{Name: tap, MTU: br.Attrs().MTU},
			Mode:      netlink.TUNTAP_MODE_TAP,
			// QEMU opens it with IFF_NO_PI and one queue; vnet_hdr it negotiates.
			Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE | netlink.TUNTAP_VNET_HDR,
		}
		if err := netlink.LinkAdd(t); err != nil {
			return fmt.Errorf("tap %s: create: %w", tap, err)
		}
		for _, f := range t.Fds {
			_ = f.Close() // persistent: the device outlives the descriptor
		}
		if link, err = netlink.LinkByName(tap); err != nil {
			return fmt.Errorf("tap %s: %w", tap, err)
		}
	case err != nil:
		return fmt.Errorf("tap %s: %w", tap, err)
	}
	if _, ok := link.(*netlink.Tuntap); !ok {
		return fmt.Errorf("tap %s: interface has type %q, not tuntap", tap, link.Type())
	}
	if err := netlink.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("tap %s: enslave to %s: %w", tap, cfg.name(), err)
	}
	if err := netlink.LinkSetHairpin(link, true); err != nil {
		return fmt.Errorf("tap %s: hairpin: %w", tap, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("tap %s: up: %w", tap, err)
	}
	return nil
}

// DetachTap removes a tap made by AttachTap. A missing tap is not an error.
func DetachTap(tap string) error {
	link, err := netlink.LinkByName(tap)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tap %s: %w", tap, err)
	}
	if _, ok := link.(*netlink.Tuntap); !ok {
		return fmt.Errorf("tap %s: interface has type %q, not tuntap; not removing", tap, link.Type())
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("tap %s: delete: %w", tap, err)
	}
	return nil
}
