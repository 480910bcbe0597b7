package firewall

import (
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/cloudbox/cloudbox/internal/testenv"
	"github.com/cloudbox/cloudbox/net/bridge"
)

var testCfg = Config{ClusterCIDR: "10.244.0.0/16", Bridge: "cbxtbr0"}

// firewallNS is a fresh namespace with iptables tables that look like a
// lived-in host: a DROP policy on FORWARD, another product's chain and jump,
// a masquerade rule of its own.
func firewallNS(t *testing.T) *testenv.NetNS {
	t.Helper()
	requireIptables(t)
	ns := testenv.NewNetNS(t)
	run(t, ns, `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:OTHER-USER - [0:0]
-A FORWARD -j OTHER-USER
-A FORWARD -i other0 -j ACCEPT
-A OTHER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 172.17.0.0/16 ! -o other0 -m comment --comment "someone else" -j MASQUERADE
COMMIT
`, "iptables-restore")
	return ns
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// iptablesSave returns iptables-save of ns without comments and counters.
func iptablesSave(t *testing.T, ns *testenv.NetNS) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(run(t, ns, "", "iptables-save"), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, counters.ReplaceAllString(l, "[0:0]"))
	}
	return strings.Join(lines, "\n")
}

func listRules(t *testing.T, ns *testenv.NetNS, table, chain string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(run(t, ns, "", "iptables", "-w", "-t", table, "-S", chain), "\n") {
		if strings.HasPrefix(l, "-A ") {
			out = append(out, l)
		}
	}
	return out
}

func ensure(t *testing.T, ns *testenv.NetNS, cfg Config) {
	t.Helper()
	ns.MustDo(t, func() error { return Ensure(cfg) })
}

func save(t *testing.T, ns *testenv.NetNS) string {
	t.Helper()
	var s string
	ns.MustDo(t, func() (err error) {
		s, err = Save()
		return err
	})
	return s
}

func TestEnsureIdempotent(t *testing.T) {
	ns := firewallNS(t)
	ensure(t, ns, testCfg)
	first, firstSave := iptablesSave(t, ns), save(t, ns)
	ensure(t, ns, testCfg)
	if got := iptablesSave(t, ns); got != first {
		t.Errorf("second Ensure changed the tables:\n%s\n---\n%s", first, got)
	}
	if got := save(t, ns); got != firstSave {
		t.Errorf("Save differs after second Ensure:\n%s\n---\n%s", firstSave, got)
	}
	want := `*filter
-N CLOUDBOX-FORWARD
-N CLOUDBOX-ISOLATION
-I FORWARD 1 -j CLOUDBOX-FORWARD
-A CLOUDBOX-FORWARD -m comment --comment "cloudbox: namespace isolation" -j CLOUDBOX-ISOLATION
-A CLOUDBOX-FORWARD -i cbxtbr0 -m comment --comment "cloudbox: from pods" -j ACCEPT
-A CLOUDBOX-FORWARD -o cbxtbr0 -m comment --comment "cloudbox: to pods" -j ACCEPT
COMMIT
*nat
-N CLOUDBOX-POSTROUTING
-I POSTROUTING 1 -j CLOUDBOX-POSTROUTING
-A CLOUDBOX-POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -m comment --comment "cloudbox: pod egress" -j MASQUERADE
COMMIT
`
	if firstSave != want {
		t.Errorf("Save:\n%s\nwant:\n%s", firstSave, want)
	}

	// The host's own rules are still there, after ours.
	fwd := listRules(t, ns, "filter", "FORWARD")
	if len(fwd) != 3 || fwd[0] != "-A FORWARD -j CLOUDBOX-FORWARD" || fwd[1] != "-A FORWARD -j OTHER-USER" {
		t.Errorf("FORWARD = %q", fwd)
	}

	// Someone pushes our jump down and duplicates it; a stray rule lands in
	// our chain. Ensure puts things back as they were.
	run(t, ns, "", "iptables", "-w", "-I", "FORWARD", "1", "-j", "OTHER-USER")
	run(t, ns, "", "iptables", "-w", "-A", "FORWARD", "-j", "CLOUDBOX-FORWARD")
	run(t, ns, "", "iptables", "-w", "-A", "CLOUDBOX-FORWARD", "-j", "DROP")
	run(t, ns, "", "iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "-j", "CLOUDBOX-POSTROUTING")
	ensure(t, ns, testCfg)
	if got := save(t, ns); got != firstSave {
		t.Errorf("Ensure did not repair:\n%s\nwant:\n%s", got, firstSave)
	}
	if n := strings.Count(strings.Join(listRules(t, ns, "filter", "FORWARD"), "\n"), "CLOUDBOX-FORWARD"); n != 1 {
		t.Errorf("%d jumps to CLOUDBOX-FORWARD, want 1", n)
	}

	// A new cluster CIDR replaces the masquerade rule rather than adding one.
	ensure(t, ns, Config{ClusterCIDR: "10.100.0.0/16", Bridge: "cbxtbr0"})
	post := listRules(t, ns, "nat", ChainPostrouting)
	if len(post) != 1 || !strings.Contains(post[0], "-s 10.100.0.0/16 ! -d 10.100.0.0/16") {
		t.Errorf("CLOUDBOX-POSTROUTING after CIDR change = %q", post)
	}
}

func TestEnsureValidates(t *testing.T) {
	for _, cidr := range []string{"", "10.244.0.0", "fd00::/64", "bogus/8"} {
		if _, _, err := (Config{ClusterCIDR: cidr}).rules(); err == nil {
			t.Errorf("cluster CIDR %q accepted", cidr)
		}
	}
	if err := EnsureChain(nil, "filter", "MY-CHAIN", nil, nil); err == nil {
		t.Error("EnsureChain accepted a chain without the CLOUDBOX- prefix")
	}
}

func TestMasqueradeRule(t *testing.T) {
	ns := firewallNS(t)
	ensure(t, ns, Config{ClusterCIDR: "10.244.0.0/16"})
	post := listRules(t, ns, "nat", ChainPostrouting)
	if len(post) != 1 {
		t.Fatalf("CLOUDBOX-POSTROUTING = %q, want one rule", post)
	}
	for _, part := range []string{"-s 10.244.0.0/16", "! -d 10.244.0.0/16", "-j MASQUERADE"} {
		if !strings.Contains(post[0], part) {
			t.Errorf("masquerade rule %q lacks %q", post[0], part)
		}
	}
	fwd := listRules(t, ns, "filter", ChainForward)
	if len(fwd) != 3 || !strings.Contains(fwd[0], "-j "+ChainIsolation) || !strings.Contains(fwd[1], "-i cbx0") || !strings.Contains(fwd[2], "-o cbx0") {
		t.Errorf("CLOUDBOX-FORWARD with default bridge = %q", fwd)
	}
}

func TestCleanupRestores(t *testing.T) {
	ns := firewallNS(t)
	before := iptablesSave(t, ns)
	ensure(t, ns, testCfg)
	// A later part of cloudbox adds its own chains, jumping between them.
	ns.MustDo(t, func() error {
		if err := EnsureChain(nil, "nat", "CLOUDBOX-SVC-TEST", nil, []Rule{{"-j", "RETURN"}}); err != nil {
			return err
		}
		return EnsureChain(nil, "nat", "CLOUDBOX-SERVICES", []string{"PREROUTING", "OUTPUT"},
			[]Rule{{"-d", "10.96.0.10/32", "-p", "tcp", "--dport", "53", "-j", "CLOUDBOX-SVC-TEST"}})
	})
	if !strings.Contains(iptablesSave(t, ns), "CLOUDBOX-SERVICES") {
		t.Fatal("CLOUDBOX-SERVICES not created")
	}
	ns.MustDo(t, Cleanup)
	if after := iptablesSave(t, ns); after != before {
		t.Errorf("tables after Cleanup differ:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	ns.MustDo(t, Cleanup) // nothing left: still fine
	if got, want := save(t, ns), "*filter\nCOMMIT\n*nat\nCOMMIT\n"; got != want {
		t.Errorf("Save after Cleanup = %q, want %q", got, want)
	}
}

// TestForwardDropAndMasquerade routes a pod's traffic through a "node"
// namespace whose FORWARD policy is DROP to an "outside" namespace: refused
// before Ensure, passing and masqueraded to the node's address after.
func TestForwardDropAndMasquerade(t *testing.T) {
	node := firewallNS(t)
	pod, outside := testenv.NewNetNS(t), testenv.NewNetNS(t)
	_, subnet, _ := net.ParseCIDR("10.244.7.0/24")
	bcfg := bridge.Config{Bridge: testCfg.Bridge, Subnet: subnet}
	hostForward, err := os.ReadFile(ipForwardPath)
	if err != nil {
		t.Fatal(err)
	}

	outsideIP := net.ParseIP("192.0.2.2")
	node.MustDo(t, func() error {
		if err := bridge.EnsureBridge(bcfg); err != nil {
			return err
		}
		if err := bridge.Attach(bcfg, pod.Path, "eth0", net.ParseIP("10.244.7.5"), testenv.IfName("cbx")); err != nil {
			return err
		}
		if err := EnableIPForward(); err != nil {
			return err
		}
		// The node's uplink: a veth whose other end is the outside world.
		a := netlink.NewLinkAttrs()
		a.Name = testenv.IfName("cbxu")
		up := &netlink.Veth{LinkAttrs: a, PeerName: "eth0", PeerNamespace: netlink.NsFd(outside.Fd())}
		if err := netlink.LinkAdd(up); err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("192.0.2.1/24")
		if err := netlink.AddrAdd(up, addr); err != nil {
			return err
		}
		return netlink.LinkSetUp(up)
	})
	outside.MustDo(t, func() error {
		// No route back to the pods: only masqueraded traffic can answer.
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("192.0.2.2/24")
		if err := netlink.AddrAdd(eth0, addr); err != nil {
			return err
		}
		return netlink.LinkSetUp(eth0)
	})
	if got, err := os.ReadFile(ipForwardPath); err != nil || string(got) != string(hostForward) {
		t.Fatalf("host ip_forward changed: %q -> %q (%v)", hostForward, got, err)
	}

	srv := outside.EchoServer(t, outsideIP)
	if got, err := pod.DialEcho(srv, 500*time.Millisecond); err == nil {
		t.Fatalf("FORWARD policy DROP let traffic through before Ensure: %q", got)
	}

	ensure(t, node, testCfg)
	got, err := pod.DialEcho(srv, 3*time.Second)
	if err != nil {
		t.Fatalf("pod -> outside after Ensure: %v", err)
	}
	if want := "hello from 192.0.2.1\n"; got != want {
		t.Errorf("outside saw %q, want %q (masqueraded to the node)", got, want)
	}

	// Both directions went through our accept rules, the egress through our
	// masquerade rule.
	node.MustDo(t, func() error {
		ipt, err := newIPT()
		if err != nil {
			return err
		}
		for _, c := range []struct{ table, chain string }{{"filter", ChainForward}, {"nat", ChainPostrouting}} {
			// Stats, not StructuredStats: go-iptables v0.8.0 cannot parse the
			// negated destination ("!10.244.0.0/16") of the masquerade rule.
			stats, err := ipt.Stats(c.table, c.chain)
			if err != nil {
				return err
			}
			if want := map[string]int{ChainForward: 3, ChainPostrouting: 1}[c.chain]; len(stats) != want {
				t.Errorf("%s %s has %d rules, want %d", c.table, c.chain, len(stats), want)
			}
			for i, s := range stats {
				if len(s) == 0 || s[0] == "0" {
					t.Errorf("%s %s rule %d matched no packets", c.table, c.chain, i+1)
				}
			}
		}
		return nil
	})

	// After Cleanup the host's DROP policy rules again.
	node.MustDo(t, Cleanup)
	if _, err := pod.DialEcho(srv, 500*time.Millisecond); err == nil {
		t.Error("traffic still forwarded after Cleanup")
	}
}
