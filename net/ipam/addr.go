package ipam

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// parseV4Prefix parses an IPv4 CIDR and masks it ("10.244.1.7/24" is 10.244.1.0/24).
func parseV4Prefix(cidr string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: %v: %w", cidr, err, ErrInvalid)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q: only IPv4 is supported: %w", cidr, ErrInvalid)
	}
	return p.Masked(), nil
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromU32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// prefixSize is the number of addresses in an IPv4 prefix.
func prefixSize(p netip.Prefix) int { return 1 << (32 - p.Bits()) }

// offsetOf returns ip's offset in p, or -1 if ip is nil or outside p.
func offsetOf(p netip.Prefix, ip net.IP) int {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return -1
	}
	a = a.Unmap()
	if !a.Is4() || !p.Contains(a) {
		return -1
	}
	return int(u32(a) - u32(p.Addr()))
}

// addrAt returns the address at offset off of p.
func addrAt(p netip.Prefix, off int) netip.Addr { return fromU32(u32(p.Addr()) + uint32(off)) }

func toIP(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }
