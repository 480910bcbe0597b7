package dns

import (
	"context"
	"net"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"
)

type service struct {
	clusterIP net.IP
	headless  bool
	endpoints []net.IP
}

// fakeResolver is the control plane's side, from a map keyed "namespace/name".
type fakeResolver struct {
	services map[string]service
	pods     map[string]bool // "namespace/ip"
}

func (f fakeResolver) LookupService(namespace, name string) (net.IP, bool, []net.IP, bool) {
	s, ok := f.services[namespace+"/"+name]
	return s.clusterIP, s.headless, s.endpoints, ok
}

func (f fakeResolver) LookupPod(namespace string, ip net.IP) bool {
	return f.pods[namespace+"/"+ip.String()]
}

var resolver = fakeResolver{
	services: map[string]service{
		"shop/web":   {clusterIP: net.IPv4(10, 96, 0, 10)},
		"shop/db":    {headless: true, endpoints: []net.IP{net.IPv4(10, 244, 0, 5), net.IPv4(10, 244, 1, 6), net.IPv4(10, 244, 2, 7)}},
		"shop/empty": {headless: true},
	},
	pods: map[string]bool{"shop/10.244.0.5": true},
}

// startUpstream runs a fake upstream resolver on loopback that answers example.com.
// and counts the queries it gets.
func startUpstream(t *testing.T, rcode int) (addr string, queries *atomic.Int32) {
	t.Helper()
	queries = new(atomic.Int32)
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		queries.Add(1)
		m := new(dns.Msg).SetReply(r)
		m.Rcode = rcode
		q := r.Question[0]
		switch {
		case rcode != dns.RcodeSuccess:
		case q.Name == "example.com." && q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(192, 0, 2, 1),
			})
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	pc, ln, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String(), queries
}

// blackhole returns a loopback UDP address that reads queries and never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

func startServer(t *testing.T, upstreams []string) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		Addr:      "127.0.0.1:0",
		Resolver:  resolver,
		Upstreams: upstreams,
		Timeout:   300 * time.Millisecond,
		Logger:    zaptest.NewLogger(t),
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	})
	return s
}

func query(t *testing.T, s *Server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	m := new(dns.Msg).SetQuestion(name, qtype)
	r, _, err := c.Exchange(m, s.LocalAddr())
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return r
}

func answers(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestServer(t *testing.T) {
	up, upQueries := startUpstream(t, dns.RcodeSuccess)
	s := startServer(t, []string{up})
	tests := []struct {
		name    string
		network string
		qname   string
		qtype   uint16
		rcode   int
		want    []string
	}{
		{"ClusterIP", "udp", "web.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.96.0.10"}},
		{"case-insensitive", "udp", "WEB.Shop.SVC.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.96.0.10"}},
		{"ClusterIP over TCP", "tcp", "web.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.96.0.10"}},
		{"headless", "udp", "db.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.244.0.5", "10.244.1.6", "10.244.2.7"}},
		{"headless without endpoints", "udp", "empty.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, nil},
		{"AAAA of a service", "udp", "web.shop.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"TXT of a service", "tcp", "web.shop.svc.cluster.local.", dns.TypeTXT, dns.RcodeSuccess, nil},
		{"unknown service", "udp", "nope.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"wrong namespace", "udp", "web.other.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"unknown AAAA", "udp", "nope.shop.svc.cluster.local.", dns.TypeAAAA, dns.RcodeNameError, nil},
		{"search path miss", "udp", "web.shop.svc.cluster.local.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"other name in the domain", "udp", "foo.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"namespace level", "udp", "shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, nil},
		{"domain apex", "udp", "cluster.local.", dns.TypeA, dns.RcodeSuccess, nil},
		{"pod", "udp", "10-244-0-5.shop.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.244.0.5"}},
		{"unknown pod", "udp", "10-244-0-9.shop.pod.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"forwarded", "udp", "example.com.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"forwarded over TCP", "tcp", "example.com.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"forwarded NXDOMAIN", "udp", "nope.example.com.", dns.TypeA, dns.RcodeNameError, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := query(t, s, tt.network, tt.qname, tt.qtype)
			if r.Rcode != tt.rcode {
				t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			if got := answers(r); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("answers = %v, want %v", got, tt.want)
			}
			inCluster := dns.IsSubDomain("cluster.local.", strings.ToLower(tt.qname))
			if inCluster && !r.Authoritative {
				t.Error("cluster answer not authoritative")
			}
			if inCluster && len(r.Answer) == 0 {
				if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
					t.Errorf("negative answer without SOA: %v", r.Ns)
				}
			}
		})
	}
	if n := upQueries.Load(); n != 3 {
		t.Errorf("upstream got %d queries, want 3 (cluster names must not leak)", n)
	}
}

func TestForwardFailover(t *testing.T) {
	good, goodQueries := startUpstream(t, dns.RcodeSuccess)
	failing, failingQueries := startUpstream(t, dns.RcodeServerFailure)
	hole := blackhole(t)
	tests := []struct {
		name      string
		upstreams []string
		rcode     int
		want      []string
	}{
		{"silent first upstream", []string{hole, good}, dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"SERVFAIL first upstream", []string{failing, good}, dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"all fail", []string{hole, failing}, dns.RcodeServerFailure, nil},
		{"none", []string{}, dns.RcodeServerFailure, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.upstreams)
			start := time.Now()
			r := query(t, s, "udp", "example.com.", dns.TypeA)
			if r.Rcode != tt.rcode {
				t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			if got := answers(r); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("answers = %v, want %v", got, tt.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v: the upstream timeout is not applied", d)
			}
		})
	}
	if goodQueries.Load() != 2 || failingQueries.Load() != 2 {
		t.Errorf("good upstream got %d queries, failing %d; want 2 and 2", goodQueries.Load(), failingQueries.Load())
	}
}

func TestServerStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Addr: "127.0.0.1:0", Resolver: resolver, Upstreams: []string{}}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	addr := s.LocalAddr()
	cancel()
	<-s.Done()
	// Both ports are free again.
	pc, ln, err := listen(addr)
	if err != nil {
		t.Fatalf("address still in use after stop: %v", err)
	}
	pc.Close()
	ln.Close()
	if err := (&Server{}).Start(context.Background()); err == nil {
		t.Error("Start without a Resolver succeeded")
	}
}

func TestServerDropsItselfFromUpstreams(t *testing.T) {
	pc, ln, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &Server{Addr: addr, Resolver: resolver, Upstreams: []string{addr}, Timeout: 200 * time.Millisecond}
	if err := s.Start(ctx); err != nil {
		t.Skipf("port %s taken again: %v", addr, err)
	}
	r := query(t, s, "udp", "example.com.", dns.TypeA)
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode = %s, want SERVFAIL (no upstream left)", dns.RcodeToString[r.Rcode])
	}
}

func TestHeadlessTruncatedOverUDP(t *testing.T) {
	var eps []net.IP
	for i := 0; i < 100; i++ {
		eps = append(eps, net.IPv4(10, 244, 0, byte(i+2)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &Server{Addr: "127.0.0.1:0", Upstreams: []string{}, Resolver: fakeResolver{services: map[string]service{
		"shop/big": {headless: true, endpoints: eps},
	}}}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	udp := query(t, s, "udp", "big.shop.svc.cluster.local.", dns.TypeA)
	if !udp.Truncated || len(udp.Answer) >= 100 {
		t.Errorf("UDP answer: truncated=%v with %d records", udp.Truncated, len(udp.Answer))
	}
	if tcp := query(t, s, "tcp", "big.shop.svc.cluster.local.", dns.TypeA); len(tcp.Answer) != 100 {
		t.Errorf("TCP answer has %d records, want 100", len(tcp.Answer))
	}
}

func TestHostUpstreams(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	if err := os.WriteFile(path, []byte("search example.com\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := HostUpstreams(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.53:53,[::1]:53"; strings.Join(got, ",") != want {
		t.Errorf("HostUpstreams = %v, want %s", got, want)
	}
	if err := os.WriteFile(path, []byte("search example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := HostUpstreams(path); err == nil {
		t.Error("no nameserver: no error")
	}
	for in, want := range map[string]string{
		"10.0.0.1":      "10.0.0.1:53",
		"10.0.0.1:5353": "10.0.0.1:5353",
		"fd00::1":       "[fd00::1]:53",
		"[fd00::1]:54":  "[fd00::1]:54",
	} {
		if got := withPort(in); got != want {
			t.Errorf("withPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolvConf(t *testing.T) {
	got := string(ResolvConf("10.244.1.1", "shop"))
	want := "search shop.svc.cluster.local svc.cluster.local cluster.local\n" +
		"nameserver 10.244.1.1\n" +
		"options ndots:5\n"
	if got != want {
		t.Errorf("ResolvConf =\n%s\nwant\n%s", got, want)
	}
	if got := string(ResolvConfDomain("10.0.0.1", "a", "corp.internal.")); !strings.HasPrefix(got, "search a.svc.corp.internal svc.corp.internal corp.internal\n") {
		t.Errorf("ResolvConfDomain = %q", got)
	}
}
