// Package dns is the cluster DNS server of a cloudbox node. It answers the names of
// Services under the cluster domain (SERVICE.NAMESPACE.svc.cluster.local) from a
// Resolver that the control plane side implements, and forwards every other name to
// the host's resolvers. Short names ("web", "web.shop") are resolved by the pod's
// resolver through the search path ResolvConf writes; the server sees only full names.
package dns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// Defaults of a Server.
const (
	DefaultDomain  = "cluster.local"
	DefaultAddr    = "127.0.0.1:53"
	DefaultTimeout = 2 * time.Second
	DefaultTTL     = 5
	// HostResolvConf is where the host's resolvers are read from when Upstreams is nil.
	HostResolvConf = "/etc/resolv.conf"
)

// Resolver looks up the cluster's names. The server calls it from many goroutines at
// once, so it must be safe for concurrent use; it should answer from memory (a cache
// of Services and Endpoints), since every cluster query waits for it.
type Resolver interface {
	// LookupService returns the Service namespace/name: its ClusterIP, or for a
	// headless Service (no ClusterIP) the addresses of its ready endpoints. ok is
	// false if there is no such Service.
	LookupService(namespace, name string) (clusterIP net.IP, headless bool, endpoints []net.IP, ok bool)
}

// PodResolver is optionally implemented by a Resolver to answer pod names,
// A-B-C-D.NAMESPACE.pod.cluster.local, only for addresses of pods that exist in that
// namespace. Without it every pod name is NXDOMAIN.
type PodResolver interface {
	LookupPod(namespace string, ip net.IP) bool
}

// Server is a DNS server over UDP and TCP. Fill in the fields, then call Start; the
// fields must not change afterwards. A Server serves once: it stops when the context
// given to Start is cancelled and cannot be started again.
type Server struct {
	// Addr is the address to listen on, UDP and TCP alike, e.g. the bridge address
	// with port 53. A port of 0 picks a free port, the same for both. If empty,
	// DefaultAddr.
	Addr string
	// Domain is the cluster domain. If empty, DefaultDomain.
	Domain string
	// Resolver answers names under Domain. It must not be nil.
	Resolver Resolver
	// Upstreams are the resolvers ("host" or "host:port") that other names are
	// forwarded to, tried in turn. If nil, they are read from HostResolvConf at Start;
	// if empty (not nil), other names get SERVFAIL. An upstream equal to the server's
	// own address is dropped, lest a query loop.
	Upstreams []string
	// Timeout bounds the wait for each upstream. If zero, DefaultTimeout.
	Timeout time.Duration
	// TTL is the time to live of the cluster answers, in seconds. If zero,
	// DefaultTTL: Services change, so clients should not cache them long.
	TTL uint32
	// Logger receives the server's logs, named "dns". If nil, logs are discarded.
	Logger *zap.Logger

	domain    string
	upstreams []string
	timeout   time.Duration
	ttl       uint32
	log       *zap.Logger
	ctx       context.Context

	mu   sync.Mutex
	addr string
	done chan struct{}
}

// Start listens on Addr and serves in the background until ctx is cancelled; Done is
// closed once the server has stopped. It returns once both listeners are open.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return errors.New("dns: server already started")
	}
	if s.Resolver == nil {
		return errors.New("dns: no Resolver")
	}
	s.log = s.Logger
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.log = s.log.Named("dns")
	s.domain = dns.Fqdn(strings.ToLower(s.Domain))
	if s.Domain == "" {
		s.domain = DefaultDomain + "."
	}
	s.timeout = s.Timeout
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	s.ttl = s.TTL
	if s.ttl == 0 {
		s.ttl = DefaultTTL
	}
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}

	pc, ln, err := listen(addr)
	if err != nil {
		return fmt.Errorf("dns: listen on %s: %w", addr, err)
	}
	s.addr = pc.LocalAddr().String()

	upstreams := s.Upstreams
	if upstreams == nil {
		upstreams, err = HostUpstreams(HostResolvConf)
		if err != nil {
			s.log.Warn("no upstream resolvers: names outside the cluster will fail", zap.Error(err))
		}
	}
	s.upstreams = nil
	for _, u := range upstreams {
		u = withPort(u)
		if u == s.addr {
			continue
		}
		s.upstreams = append(s.upstreams, u)
	}

	s.ctx = ctx
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	var started sync.WaitGroup
	errs := make(chan error, 2)
	for _, srv := range []*dns.Server{udp, tcp} {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				errs <- err
			}
		}()
	}
	ready := make(chan struct{})
	go func() { started.Wait(); close(ready) }()
	select {
	case <-ready:
	case err := <-errs:
		pc.Close()
		ln.Close()
		return fmt.Errorf("dns: serve on %s: %w", s.addr, err)
	}

	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		select {
		case <-ctx.Done():
		case err := <-errs:
			s.log.Error("serving stopped", zap.Error(err))
		}
		stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		udp.ShutdownContext(stop)
		tcp.ShutdownContext(stop)
	}()
	s.log.Info("serving", zap.String("addr", s.addr), zap.String("domain", s.domain),
		zap.Strings("upstreams", s.upstreams))
	return nil
}

// listen opens UDP and TCP on the same address; with port 0 it retries until the port
// picked for UDP is also free for TCP.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		_, bound, _ := net.SplitHostPort(pc.LocalAddr().String())
		ln, err := net.Listen("tcp", net.JoinHostPort(host, bound))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || try == 20 {
			return nil, nil, err
		}
	}
}

// LocalAddr returns the address the server listens on, with the port picked if Addr
// asked for port 0; empty before Start. (It cannot be named Addr: that is the field.)
func (s *Server) LocalAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Done returns a channel closed once the server has stopped; nil before Start.
func (s *Server) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// HostUpstreams reads the nameservers of a resolv.conf file as "host:port" addresses.
func HostUpstreams(path string) ([]string, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, srv := range cfg.Servers {
		out = append(out, net.JoinHostPort(srv, cfg.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no nameserver", path)
	}
	return out, nil
}

// withPort adds port 53 to an address without one.
func withPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), "53")
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 || req.Response {
		s.reply(w, req, new(dns.Msg).SetRcodeFormatError(req))
		return
	}
	if req.Opcode != dns.OpcodeQuery {
		s.reply(w, req, new(dns.Msg).SetRcode(req, dns.RcodeNotImplemented))
		return
	}
	if dns.IsSubDomain(s.domain, strings.ToLower(req.Question[0].Name)) {
		s.reply(w, req, s.answerCluster(req))
		return
	}
	s.reply(w, req, s.forward(w, req))
}

// reply writes m, truncated to what a UDP client can take.
func (s *Server) reply(w dns.ResponseWriter, req, m *dns.Msg) {
	m.Id = req.Id
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("write reply", zap.Error(err), zap.Stringer("client", w.RemoteAddr()))
	}
}

// answerCluster answers a name under the cluster domain; it never forwards, so a
// name that does not exist in the cluster is NXDOMAIN rather than a leak to the
// host's resolvers.
func (s *Server) answerCluster(req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	m := new(dns.Msg).SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(max(opt.UDPSize(), dns.MinMsgSize), false)
	}
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return m
	}

	name := strings.ToLower(q.Name)
	labels := dns.SplitDomainName(strings.TrimSuffix(name, s.domain))
	var ips []net.IP
	switch {
	case len(labels) == 0,
		len(labels) == 1 && (labels[0] == "svc" || labels[0] == "pod"),
		len(labels) == 2 && (labels[1] == "svc" || labels[1] == "pod"):
		// The domain itself and the names between it and the records: they exist
		// but hold no address.
	case len(labels) == 3 && labels[2] == "svc":
		clusterIP, headless, endpoints, ok := s.Resolver.LookupService(labels[1], labels[0])
		if !ok {
			return s.nxdomain(m)
		}
		if headless {
			ips = append(ips, endpoints...)
			rand.Shuffle(len(ips), func(i, j int) { ips[i], ips[j] = ips[j], ips[i] })
		} else if clusterIP != nil {
			ips = []net.IP{clusterIP}
		}
	case len(labels) == 3 && labels[2] == "pod":
		ip := net.ParseIP(strings.ReplaceAll(labels[0], "-", ".")).To4()
		pr, ok := s.Resolver.(PodResolver)
		if ip == nil || !ok || !pr.LookupPod(labels[1], ip) {
			return s.nxdomain(m)
		}
		ips = []net.IP{ip}
	default:
		return s.nxdomain(m)
	}

	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
	}
	for _, ip := range ips {
		v4 := ip.To4()
		switch {
		case v4 != nil && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: v4})
		case v4 == nil && ip.To16() != nil && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY):
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: ip.To16()})
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{s.soa()} // NODATA: the name exists, not with this type
	}
	return m
}

func (s *Server) nxdomain(m *dns.Msg) *dns.Msg {
	m.Rcode = dns.RcodeNameError
	m.Ns = []dns.RR{s.soa()}
	return m
}

// soa is the authority record that lets resolvers cache negative answers for TTL.
func (s *Server) soa() dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: s.domain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.ttl},
		Ns:      "ns.dns." + s.domain,
		Mbox:    "hostmaster." + s.domain,
		Serial:  1,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  s.ttl,
	}
}

// forward asks the upstreams in turn, over the transport the client used, and
// returns the first answer that is not SERVFAIL or REFUSED; SERVFAIL if none.
func (s *Server) forward(w dns.ResponseWriter, req *dns.Msg) *dns.Msg {
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	c := &dns.Client{Net: network, Timeout: s.timeout}
	q := req.Question[0]
	for _, up := range s.upstreams {
		resp, _, err := c.ExchangeContext(s.ctx, req, up)
		if err != nil {
			s.log.Debug("upstream failed", zap.String("upstream", up), zap.String("name", q.Name), zap.Error(err))
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			s.log.Debug("upstream refused", zap.String("upstream", up), zap.String("name", q.Name),
				zap.String("rcode", dns.RcodeToString[resp.Rcode]))
			continue
		}
		return resp
	}
	if len(s.upstreams) > 0 {
		s.log.Warn("all upstreams failed", zap.String("name", q.Name), zap.Strings("upstreams", s.upstreams))
	}
	m := new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}
