package bridge

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/cloudbox/cloudbox/internal/testenv"
)

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type fixture struct {
	cfg  Config
	host *testenv.NetNS
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		cfg:  Config{Bridge: testenv.IfName("cbxb"), Subnet: mustCIDR(t, "10.244.3.0/24"), MTU: 1400},
		host: testenv.NewNetNS(t),
	}
	f.host.MustDo(t, func() error { return EnsureBridge(f.cfg) })
	return f
}

func (f *fixture) attach(t *testing.T, pod *testenv.NetNS, ip string, hostVeth string) {
	t.Helper()
	f.host.MustDo(t, func() error {
		return Attach(f.cfg, pod.Path, "eth0", net.ParseIP(ip), hostVeth)
	})
}

func TestGateway(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.244.3.0/24", "10.244.3.1"},
		{"10.244.3.7/24", "10.244.3.1"},
		{"10.0.0.0/30", "10.0.0.1"},
		{"10.0.0.0/31", "<nil>"},
		{"fd00::/64", "<nil>"},
	} {
		if got := Gateway(mustCIDR(t, tc.in)).String(); got != tc.want {
			t.Errorf("Gateway(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if Gateway(nil) != nil {
		t.Error("Gateway(nil) != nil")
	}
}

func TestPodsTalkThroughBridge(t *testing.T) {
	f := newFixture(t)
	p1, p2 := testenv.NewNetNS(t), testenv.NewNetNS(t)
	v1 := testenv.IfName("cbx")
	f.attach(t, p1, "10.244.3.2", v1)
	f.attach(t, p2, "10.244.3.3", testenv.IfName("cbx"))

	// Hairpin mode on the bridge port, so a pod can reach itself through a VIP.
	f.host.MustDo(t, func() error {
		l, err := netlink.LinkByName(v1)
		if err != nil {
			return err
		}
		pi, err := netlink.LinkGetProtinfo(l)
		if err != nil {
			return err
		}
		if !pi.Hairpin {
			t.Errorf("%s: hairpin mode off", v1)
		}
		return nil
	})

	addr := p2.EchoServer(t, net.ParseIP("10.244.3.3"))
	got, err := p1.DialEcho(addr, 3*time.Second)
	if err != nil {
		t.Fatalf("pod1 -> pod2: %v", err)
	}
	if want := "hello from 10.244.3.2\n"; got != want {
		t.Errorf("pod1 -> pod2 answered %q, want %q", got, want)
	}

	// The pod reaches its gateway, the bridge address in the host namespace.
	gwAddr := f.host.EchoServer(t, net.ParseIP("10.244.3.1"))
	if got, err := p2.DialEcho(gwAddr, 3*time.Second); err != nil || got != "hello from 10.244.3.3\n" {
		t.Fatalf("pod2 -> gateway: %q, %v", got, err)
	}

	// Pod side: eth0 with the address, MTU, default route via the gateway; lo up.
	p1.MustDo(t, func() error {
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if eth0.Attrs().MTU != 1400 {
			t.Errorf("pod eth0 mtu = %d, want 1400", eth0.Attrs().MTU)
		}
		routes, err := netlink.RouteList(eth0, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		var def bool
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(net.ParseIP("10.244.3.1")) {
				def = true
			}
		}
		if !def {
			t.Errorf("no default route via 10.244.3.1 in %v", routes)
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if lo.Attrs().Flags&net.FlagUp == 0 {
			t.Error("lo is down in pod")
		}
		return nil
	})
}

func TestAttachIdempotent(t *testing.T) {
	f := newFixture(t)
	pod := testenv.NewNetNS(t)
	veth := testenv.IfName("cbx")
	f.attach(t, pod, "10.244.3.9", veth)

	snapshot := func() string {
		var s string
		pod.MustDo(t, func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			routes, err := netlink.RouteList(l, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			s = fmt.Sprintf("idx=%d addrs=%v routes=%d", l.Attrs().Index, addrs, len(routes))
			return nil
		})
		var hostIdx int
		f.host.MustDo(t, func() error {
			l, err := netlink.LinkByName(veth)
			if err != nil {
				return err
			}
			hostIdx = l.Attrs().Index
			return nil
		})
		return fmt.Sprintf("%s host=%d", s, hostIdx)
	}
	before := snapshot()
	f.attach(t, pod, "10.244.3.9", veth)
	if after := snapshot(); after != before {
		t.Errorf("second Attach changed the pod:\nbefore %s\nafter  %s", before, after)
	}

	// A crash half way: the host end came off the bridge and went down, the
	// pod lost its default route. Attach repairs.
	f.host.MustDo(t, func() error {
		l, err := netlink.LinkByName(veth)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetNoMaster(l); err != nil {
			return err
		}
		return netlink.LinkSetDown(l)
	})
	pod.MustDo(t, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteDel(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP("10.244.3.1")})
	})
	f.attach(t, pod, "10.244.3.9", veth)
	if after := snapshot(); after != before {
		t.Errorf("Attach after crash:\nbefore %s\nafter  %s", before, after)
	}
	gwAddr := f.host.EchoServer(t, net.ParseIP("10.244.3.1"))
	if _, err := pod.DialEcho(gwAddr, 3*time.Second); err != nil {
		t.Fatalf("pod -> gateway after repair: %v", err)
	}

	// A crash that left a host end whose peer never reached the pod.
	pod2 := testenv.NewNetNS(t)
	veth2 := testenv.IfName("cbx")
	f.host.MustDo(t, func() error {
		a := netlink.NewLinkAttrs()
		a.Name = veth2
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: a, PeerName: testenv.IfName("cbxp")})
	})
	f.attach(t, pod2, "10.244.3.10", veth2)
	if _, err := pod2.DialEcho(gwAddr, 3*time.Second); err != nil {
		t.Fatalf("pod2 -> gateway after stale pair: %v", err)
	}
	f.host.MustDo(t, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Type() == "veth" && l.Attrs().Name != veth && l.Attrs().Name != veth2 {
				t.Errorf("stale veth %s left in host namespace", l.Attrs().Name)
			}
		}
		return nil
	})
}

func TestDetach(t *testing.T) {
	f := newFixture(t)
	pod := testenv.NewNetNS(t)
	veth := testenv.IfName("cbx")
	f.attach(t, pod, "10.244.3.4", veth)
	f.host.MustDo(t, func() error { return Detach(veth) })
	f.host.MustDo(t, func() error {
		if _, err := netlink.LinkByName(veth); err == nil {
			t.Errorf("host veth %s still exists", veth)
		}
		return Detach(veth) // gone already: fine
	})
	pod.MustDo(t, func() error {
		if _, err := netlink.LinkByName("eth0"); err == nil {
			t.Error("pod eth0 still exists after Detach")
		}
		return nil
	})
}

func TestEnsureBridgeRepairs(t *testing.T) {
	f := newFixture(t)
	var idx int
	f.host.MustDo(t, func() error {
		br, err := netlink.LinkByName(f.cfg.Bridge)
		if err != nil {
			return err
		}
		idx = br.Attrs().Index
		// Break it: no address, a stale one, down.
		addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if err := netlink.AddrDel(br, &a); err != nil {
				return err
			}
		}
		stale, _ := netlink.ParseAddr("10.99.0.1/24")
		if err := netlink.AddrAdd(br, stale); err != nil {
			return err
		}
		if err := netlink.LinkSetDown(br); err != nil {
			return err
		}
		if err := EnsureBridge(f.cfg); err != nil {
			return err
		}
		if err := EnsureBridge(f.cfg); err != nil { // and again: no change
			return err
		}
		br, err = netlink.LinkByName(f.cfg.Bridge)
		if err != nil {
			return err
		}
		if br.Attrs().Index != idx {
			t.Error("EnsureBridge recreated the bridge instead of repairing it")
		}
		if br.Attrs().Flags&net.FlagUp == 0 {
			t.Error("bridge still down")
		}
		if br.Attrs().MTU != 1400 {
			t.Errorf("bridge mtu %d, want 1400", br.Attrs().MTU)
		}
		addrs, err = netlink.AddrList(br, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.244.3.1/24" {
			t.Errorf("bridge addresses %v, want only 10.244.3.1/24", addrs)
		}
		return nil
	})

	// A non-bridge interface of that name is refused, not replaced.
	f.host.MustDo(t, func() error {
		a := netlink.NewLinkAttrs()
		a.Name = testenv.IfName("cbxd")
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: a, PeerName: testenv.IfName("cbxp")}); err != nil {
			return err
		}
		cfg := f.cfg
		cfg.Bridge = a.Name
		if err := EnsureBridge(cfg); err == nil {
			t.Error("EnsureBridge accepted a veth as bridge")
		}
		if err := RemoveBridge(a.Name); err == nil {
			t.Error("RemoveBridge removed a veth")
		}
		return nil
	})

	f.host.MustDo(t, func() error {
		if err := RemoveBridge(f.cfg.Bridge); err != nil {
			return err
		}
		if _, err := netlink.LinkByName(f.cfg.Bridge); err == nil {
			t.Error("bridge still exists after RemoveBridge")
		}
		return RemoveBridge(f.cfg.Bridge)
	})
}

func TestAttachRejectsBadInput(t *testing.T) {
	cfg := Config{Subnet: mustCIDR(t, "10.244.3.0/24")}
	for _, tc := range []struct{ ip, veth string }{
		{"10.244.3.0", "cbxok"},   // network address
		{"10.244.3.1", "cbxok"},   // gateway
		{"10.244.3.255", "cbxok"}, // broadcast
		{"10.244.4.2", "cbxok"},   // outside the subnet
		{"fd00::2", "cbxok"},
		{"10.244.3.2", ""},
		{"10.244.3.2", "cbx0123456789abc"}, // 16 bytes
	} {
		if err := Attach(cfg, "/nonexistent", "eth0", net.ParseIP(tc.ip), tc.veth); err == nil {
			t.Errorf("Attach(%s, %q) accepted", tc.ip, tc.veth)
		}
	}
	if err := Attach(Config{}, "/nonexistent", "eth0", net.ParseIP("10.0.0.2"), "cbxok"); err == nil {
		t.Error("Attach without subnet accepted")
	}
}

// The bridge keeps its MAC as ports come and go; a bridge left to choose would
// take its lowest port's, and pods would send to a stale gateway MAC.
func TestBridgeMACFixed(t *testing.T) {
	f := newFixture(t)
	want := BridgeMAC(net.ParseIP("10.244.3.1")).String()
	mac := func() string {
		var got string
		f.host.MustDo(t, func() error {
			l, err := netlink.LinkByName(f.cfg.name())
			if err != nil {
				return err
			}
			got = l.Attrs().HardwareAddr.String()
			return nil
		})
		return got
	}
	if got := mac(); got != want {
		t.Fatalf("new bridge MAC = %s, want %s", got, want)
	}
	var veths []string
	for i, ip := range []string{"10.244.3.2", "10.244.3.3", "10.244.3.4"} {
		pod := testenv.NewNetNS(t)
		veths = append(veths, testenv.IfName("cbx"))
		f.attach(t, pod, ip, veths[i])
		// A port with the lowest possible MAC: a bridge that follows its ports takes it.
		f.host.MustDo(t, func() error {
			l, err := netlink.LinkByName(veths[i])
			if err != nil {
				return err
			}
			return netlink.LinkSetHardwareAddr(l, net.HardwareAddr{0x02, 0, 0, 0, 0, byte(i + 1)})
		})
		if got := mac(); got != want {
			t.Fatalf("after port %d: bridge MAC = %s, want %s", i, got, want)
		}
	}
	f.host.MustDo(t, func() error { return Detach(veths[0]) })
	if got := mac(); got != want {
		t.Fatalf("after a port left: bridge MAC = %s, want %s", got, want)
	}
	// EnsureBridge puts a changed MAC back.
	f.host.MustDo(t, func() error {
		l, err := netlink.LinkByName(f.cfg.name())
		if err != nil {
			return err
		}
		if err := netlink.LinkSetHardwareAddr(l, net.HardwareAddr{0x02, 0, 0, 0, 0, 9}); err != nil {
			return err
		}
		return EnsureBridge(f.cfg)
	})
	if got := mac(); got != want {
		t.Fatalf("after EnsureBridge: bridge MAC = %s, want %s", got, want)
	}
}
