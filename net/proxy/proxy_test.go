package proxy

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

const vip = "10.96.0.10"

func webService(eps []Endpoint) Service {
	return Service{
		Namespace: "default", Name: "web",
		ClusterIP: net.ParseIP(vip),
		Ports:     []ServicePort{{Name: "http", Protocol: TCP, Port: 80, NodePort: 30080, TargetPort: podPort}},
		Endpoints: eps,
	}
}

func syncIn(t testing.TB, ns string, p *Proxier, svcs []Service, hps []HostPort) SyncStats {
	t.Helper()
	var st SyncStats
	var err error
	inNS(t, ns, func() { st, err = p.SyncWithStats(svcs, hps) })
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestServiceLoadBalancing(t *testing.T) {
	requireNetNS(t)
	c := newCluster(t, 3)
	p := &Proxier{Table: "nat"}
	syncIn(t, c.node, p, []Service{webService(c.endpoints(c.pods...))}, nil)

	got, err := ask(t, c.node, vip+":80", 60)
	if err != nil {
		t.Fatalf("after %v: %v\n%s", got, err, saveCloudbox(t, c.node))
	}
	for _, pd := range c.pods {
		if got[pd.name] == 0 {
			t.Errorf("%s got no connection of 60: %v", pd.name, got)
		}
	}
	t.Logf("60 connections to the VIP: %v", got)

	t.Run("RemovedEndpointGetsNoTraffic", func(t *testing.T) {
		syncIn(t, c.node, p, []Service{webService(c.endpoints(c.pods[0], c.pods[1]))}, nil)
		before := c.pods[2].accepted.Load()
		got, err := ask(t, c.node, vip+":80", 30)
		if err != nil {
			t.Fatal(err)
		}
		if got[c.pods[2].name] != 0 || c.pods[2].accepted.Load() != before {
			t.Errorf("removed endpoint still answered: %v", got)
		}
		if got[c.pods[0].name] == 0 || got[c.pods[1].name] == 0 {
			t.Errorf("remaining endpoints not both used: %v", got)
		}
	})

	t.Run("NodePortFromNode", func(t *testing.T) {
		got, err := ask(t, c.node, c.nodeIP+":30080", 10)
		if err != nil || got[c.pods[0].name]+got[c.pods[1].name] != 10 {
			t.Fatalf("node port from the node: %v, %v", got, err)
		}
	})

	t.Run("NodePortFromOutside", func(t *testing.T) {
		got, err := ask(t, c.ext, c.nodeExtIP+":30080", 10)
		if err != nil || got[c.pods[0].name]+got[c.pods[1].name] != 10 {
			t.Fatalf("node port from outside: %v, %v", got, err)
		}
	})

	t.Run("NoEndpointsRejects", func(t *testing.T) {
		syncIn(t, c.node, p, []Service{webService(nil)}, nil)
		start := time.Now()
		_, err := ask(t, c.node, vip+":80", 1)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("want connection refused, got %v", err)
		}
		if _, err := ask(t, c.ext, c.nodeExtIP+":30080", 1); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("node port: want connection refused, got %v", err)
		}
		t.Logf("refused after %v", time.Since(start))
	})

	t.Run("CleanupRemovesEverything", func(t *testing.T) {
		var err error
		inNS(t, c.node, func() { err = p.Cleanup() })
		if err != nil {
			t.Fatal(err)
		}
		if left := saveCloudbox(t, c.node); left != "" {
			t.Fatalf("after Cleanup:\n%s", left)
		}
		var err2 error
		inNS(t, c.node, func() {
			var conn net.Conn
			if conn, err2 = net.DialTimeout("tcp", vip+":80", 300*time.Millisecond); err2 == nil {
				conn.Close()
			}
		})
		if err2 == nil {
			t.Fatal("VIP still answers after Cleanup")
		}
	})
}

func TestHostPort(t *testing.T) {
	requireNetNS(t)
	c := newCluster(t, 2)
	p := &Proxier{}
	hps := []HostPort{
		{Protocol: TCP, HostPort: 9090, PodIP: net.ParseIP(c.pods[1].ip), PodPort: podPort},
		{Protocol: TCP, HostIP: net.ParseIP(c.nodeExtIP), HostPort: 9091, PodIP: net.ParseIP(c.pods[0].ip), PodPort: podPort},
	}
	syncIn(t, c.node, p, nil, hps)

	for _, tc := range []struct{ ns, addr, want string }{
		{c.ext, c.nodeExtIP + ":9090", "pod2"},
		{c.node, c.nodeIP + ":9090", "pod2"},
		{c.ext, c.nodeExtIP + ":9091", "pod1"},
		// The pod reaching its own hostPort: hairpin, masqueraded.
		{c.pods[1].ns, c.nodeIP + ":9090", "pod2"},
	} {
		got, err := ask(t, tc.ns, tc.addr, 3)
		if err != nil || got[tc.want] != 3 {
			t.Errorf("%s from %s: %v, %v; want 3 × %s", tc.addr, tc.ns, got, err, tc.want)
		}
	}
	// 9091 is bound to the outside address only.
	if got, err := ask(t, c.node, c.nodeIP+":9091", 1); err == nil {
		t.Errorf("hostPort with HostIP answered on another address: %v", got)
	}
}

func TestHairpin(t *testing.T) {
	requireNetNS(t)
	c := newCluster(t, 1)
	p := &Proxier{}
	syncIn(t, c.node, p, []Service{webService(c.endpoints(c.pods[0]))}, nil)
	// pod1 → VIP → pod1 only works when the node masquerades it.
	got, err := ask(t, c.pods[0].ns, vip+":80", 3)
	if err != nil || got["pod1"] != 3 {
		t.Fatalf("hairpin: %v, %v\n%s", got, err, saveCloudbox(t, c.node))
	}
}

func TestSyncIdempotent(t *testing.T) {
	requireNetNS(t)
	ns := newNS(t, "idem")
	svcs := manyServices(20, 3)
	hps := []HostPort{{HostPort: 8443, PodIP: net.ParseIP("10.250.0.40"), PodPort: 443}}

	p := &Proxier{}
	if st := syncIn(t, ns, p, svcs, hps); st.Skipped {
		t.Fatal("first sync skipped")
	}
	first := saveCloudbox(t, ns)

	// Same input, in another order: no exec at all.
	rev := make([]Service, len(svcs))
	for i, s := range svcs {
		rev[len(svcs)-1-i] = s
	}
	if st := syncIn(t, ns, p, rev, hps); !st.Skipped {
		t.Error("unchanged resync was not skipped")
	}
	if again := saveCloudbox(t, ns); again != first {
		t.Errorf("rules changed on resync:\n%s", diff(first, again))
	}

	// A restarted process reads the tables and rewrites the same rules.
	p2 := &Proxier{}
	if st := syncIn(t, ns, p2, svcs, hps); st.Skipped {
		t.Error("a new Proxier skipped its first sync")
	}
	if again := saveCloudbox(t, ns); again != first {
		t.Errorf("rules changed after restart:\n%s", diff(first, again))
	}
	if n := strings.Count(first, "-j CLOUDBOX-SERVICES"); n != 2 {
		t.Errorf("%d jumps to CLOUDBOX-SERVICES, want 2 (PREROUTING, OUTPUT)", n)
	}

	// Someone deletes a jump; after Invalidate the same input restores it.
	run(t, "ip", "netns", "exec", ns, "iptables", "-t", "nat", "-D", "OUTPUT", "-j", "CLOUDBOX-SERVICES")
	p2.Invalidate()
	if st := syncIn(t, ns, p2, svcs, hps); st.Skipped {
		t.Error("sync after Invalidate skipped")
	}
	if again := saveCloudbox(t, ns); again != first {
		t.Errorf("rules differ after Invalidate and resync:\n%s", diff(first, again))
	}

	// Services that disappear lose their chains in the same restore.
	syncIn(t, ns, p2, svcs[:1], nil)
	left := saveCloudbox(t, ns)
	if n := strings.Count(left, ":CLOUDBOX-SVC-") - 1; n != 1 { // minus CLOUDBOX-SVC-REJECT
		t.Errorf("%d service chains after shrinking to 1 service:\n%s", n, left)
	}
	if n := strings.Count(left, ":CLOUDBOX-SEP-"); n != 3 {
		t.Errorf("%d endpoint chains, want 3:\n%s", n, left)
	}
	// And back: the same rules as at first.
	syncIn(t, ns, p2, svcs, hps)
	if again := saveCloudbox(t, ns); again != first {
		t.Errorf("rules differ after shrink and regrow:\n%s", diff(first, again))
	}
}

func TestCleanupKeepsOtherChains(t *testing.T) {
	requireNetNS(t)
	ns := newNS(t, "clean")
	// Another cloudbox component's chain, which Cleanup must leave.
	run(t, "ip", "netns", "exec", ns, "iptables", "-t", "filter", "-N", "CLOUDBOX-FORWARD")
	run(t, "ip", "netns", "exec", ns, "iptables", "-t", "filter", "-A", "FORWARD", "-j", "CLOUDBOX-FORWARD")
	foreign := saveCloudbox(t, ns)

	p := &Proxier{}
	syncIn(t, ns, p, manyServices(5, 2), []HostPort{{HostPort: 80, PodIP: net.ParseIP("10.250.0.9"), PodPort: 80}})
	var err error
	inNS(t, ns, func() { err = p.Cleanup() })
	if err != nil {
		t.Fatal(err)
	}
	if left := saveCloudbox(t, ns); left != foreign {
		t.Fatalf("after Cleanup:\n%s\nwant only:\n%s", left, foreign)
	}
	inNS(t, ns, func() { err = p.Cleanup() })
	if err != nil {
		t.Fatalf("second Cleanup: %v", err)
	}
	run(t, "ip", "netns", "exec", ns, "iptables", "-t", "filter", "-D", "FORWARD", "-j", "CLOUDBOX-FORWARD")
	run(t, "ip", "netns", "exec", ns, "iptables", "-t", "filter", "-X", "CLOUDBOX-FORWARD")
	if left := saveCloudbox(t, ns); left != "" {
		t.Fatalf("CLOUDBOX chains left:\n%s", left)
	}
}

// TestSync1000Services logs how long 1,000 Services × 2 endpoints take to
// sync; it asserts nothing about the time.
func TestSync1000Services(t *testing.T) {
	requireNetNS(t)
	ns := newNS(t, "big")
	svcs := manyServices(1000, 2)
	p := &Proxier{}

	timed := func(what string, svcs []Service) {
		start := time.Now()
		st := syncIn(t, ns, p, svcs, nil)
		t.Logf("%-34s %8v  (%d nat chains, %d KiB payload, skipped=%v)", what, time.Since(start).Round(time.Microsecond), st.Chains, st.PayloadBytes/1024, st.Skipped)
	}
	timed("first sync, 1000 services", svcs)
	timed("unchanged resync", svcs)
	changed := manyServices(1000, 2)
	changed[500].Endpoints = changed[500].Endpoints[:1]
	timed("one endpoint fewer", changed)
	p = &Proxier{}
	timed("new Proxier (restart), same rules", changed)
	timed("back to 2 endpoints", svcs)

	start := time.Now()
	var err error
	inNS(t, ns, func() { err = p.Cleanup() })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%-34s %8v", "cleanup", time.Since(start).Round(time.Microsecond))
	if left := saveCloudbox(t, ns); left != "" {
		t.Fatalf("after Cleanup:\n%.2000s", left)
	}
}

func BenchmarkSync1000(b *testing.B) {
	requireNetNS(b)
	ns := newNS(b, "bench")
	// Alternate two inputs that differ by one endpoint so every Sync
	// really restores: an unchanged input is skipped.
	a := manyServices(1000, 2)
	c := manyServices(1000, 2)
	c[500].Endpoints = c[500].Endpoints[:1]
	p := &Proxier{}
	syncIn(b, ns, p, a, nil)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		in := a
		if i%2 == 0 {
			in = c
		}
		if st := syncIn(b, ns, p, in, nil); st.Skipped {
			b.Fatal("skipped")
		}
	}
	b.StopTimer()
	var err error
	inNS(b, ns, func() { err = p.Cleanup() })
	if err != nil {
		b.Fatal(err)
	}
}

// manyServices makes n Services with eps endpoints each, in 10.96.0.0/16
// and 10.244.0.0/16.
func manyServices(n, eps int) []Service {
	svcs := make([]Service, n)
	for i := range svcs {
		s := Service{
			Namespace: fmt.Sprintf("ns%d", i%7), Name: fmt.Sprintf("svc%d", i),
			ClusterIP: net.IPv4(10, 96, byte(i>>8), byte(i)),
			Ports:     []ServicePort{{Name: "http", Protocol: TCP, Port: 80, TargetPort: 8080}},
		}
		if i%10 == 0 {
			s.Ports[0].NodePort = 30000 + i
		}
		for e := range eps {
			k := i*eps + e
			s.Endpoints = append(s.Endpoints, Endpoint{IP: net.IPv4(10, 244, byte(k>>8), byte(k)), Ports: map[string]int{"http": 8080 + e}})
		}
		svcs[i] = s
	}
	return svcs
}

func diff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for _, l := range al {
		if !strings.Contains(b, l+"\n") {
			out.WriteString("- " + l + "\n")
		}
	}
	for _, l := range bl {
		if !strings.Contains(a, l+"\n") {
			out.WriteString("+ " + l + "\n")
		}
	}
	return out.String()
}

func TestIsolation(t *testing.T) {
	requireNetNS(t)
	c := newCluster(t, 3)
	// The firewall's CLOUDBOX-FORWARD jumps here in production.
	for _, args := range [][]string{{"-N", chainIsolation}, {"-N", "TEST-FORWARD"}, {"-A", "FORWARD", "-j", "TEST-FORWARD"}, {"-A", "TEST-FORWARD", "-j", chainIsolation}} {
		run(t, "ip", append([]string{"netns", "exec", c.node, "iptables"}, args...)...)
	}
	ip := func(p *pod) net.IP { return net.ParseIP(p.ip) }
	isolated := State{Isolated: []IsolatedNamespace{{Name: "a", PodIPs: []net.IP{ip(c.pods[0]), ip(c.pods[1])}}}}
	p := &Proxier{}
	inNS(t, c.node, func() {
		if _, err := p.SyncState(isolated); err != nil {
			t.Fatal(err)
		}
	})
	if got, err := ask(t, c.pods[1].ns, c.pods[0].ip+":8080", 2); err != nil || got["pod1"] != 2 {
		t.Errorf("same namespace: %v %v", got, err)
	}
	if got, err := ask(t, c.pods[2].ns, c.pods[0].ip+":8080", 1); err == nil {
		t.Errorf("another namespace got in: %v\n%s", got, saveCloudbox(t, c.node))
	}
	// pod1 opens connections out; the replies come back in.
	if got, err := ask(t, c.pods[0].ns, c.pods[2].ip+":8080", 1); err != nil || got["pod3"] != 1 {
		t.Errorf("isolated pod -> other namespace: %v %v", got, err)
	}
	// A new Proxier (a restart) writes the same rules.
	before := saveCloudbox(t, c.node)
	inNS(t, c.node, func() {
		if _, err := (&Proxier{}).SyncState(isolated); err != nil {
			t.Fatal(err)
		}
	})
	if after := saveCloudbox(t, c.node); after != before {
		t.Errorf("resync after restart changed rules:\n%s", diff(before, after))
	}
	// Isolation lifted: the namespace's chain goes, pod3 gets in.
	inNS(t, c.node, func() {
		if _, err := p.SyncState(State{}); err != nil {
			t.Fatal(err)
		}
	})
	if s := saveCloudbox(t, c.node); strings.Contains(s, prefixIso) {
		t.Errorf("isolation chain left:\n%s", s)
	}
	if got, err := ask(t, c.pods[2].ns, c.pods[0].ip+":8080", 1); err != nil || got["pod1"] != 1 {
		t.Errorf("after lifting isolation: %v %v", got, err)
	}
	inNS(t, c.node, func() {
		if err := p.Cleanup(); err != nil {
			t.Fatal(err)
		}
	})
}
