package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/internal/testimage"
	"github.com/cloudbox/cloudbox/net/proxy"
)

// NetworkConfig configures the network benchmark.
type NetworkConfig struct {
	// Binary is the cloudbox executable to start as the server.
	Binary string
	// Duration is how long each request phase runs. If zero, 3 s.
	Duration time.Duration
	// Clients is the number of concurrent HTTP clients. If zero, 4.
	Clients int
	// Services is how many Services the sync phase programs. If zero, 1000.
	Services int
	// Pods is how many pods each pod-start phase starts. If zero, 20.
	Pods int
	Out  io.Writer
}

// Network measures, in one run: HTTP requests/s through a Service VIP (iptables
// DNAT, as the node's proxy programs it) beside straight to the pod's address;
// the time to sync Config.Services Services beside one `iptables -A` per rule
// (extrapolated); and pod create → Running with the bridge network beside
// --pod-network none. The first two run in network namespaces of their own;
// the last starts two servers.
func Network(ctx context.Context, cfg NetworkConfig) error {
	if cfg.Duration == 0 {
		cfg.Duration = 3 * time.Second
	}
	if cfg.Clients == 0 {
		cfg.Clients = 4
	}
	if cfg.Services == 0 {
		cfg.Services = 1000
	}
	if cfg.Pods == 0 {
		cfg.Pods = 20
	}
	out := cfg.Out
	fmt.Fprintln(out, "network benchmark")
	env, err := newNetBench()
	if err != nil {
		return err
	}
	defer env.close()

	if err := env.requests(cfg, out); err != nil {
		return err
	}
	if err := env.sync(cfg, out); err != nil {
		return err
	}
	return podStartNetwork(ctx, cfg, out)
}

// netBench is a node namespace with a bridge, and a server and a client "pod"
// namespace behind veths; the server pod answers HTTP on port 8080.
type netBench struct {
	prefix         string
	node, srv, cli string
	ln             net.Listener
}

const (
	benchNet    = "10.199.0"
	benchVIP    = "10.199.128.10"
	benchSrvIP  = benchNet + ".2"
	benchCliIP  = benchNet + ".3"
	benchGateIP = benchNet + ".1"
)

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func newNetBench() (*netBench, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the network benchmark needs root")
	}
	p := fmt.Sprintf("cbxbench%d", os.Getpid())
	b := &netBench{prefix: p, node: p + "-node", srv: p + "-srv", cli: p + "-cli"}
	steps := [][]string{
		{"netns", "add", b.node}, {"netns", "add", b.srv}, {"netns", "add", b.cli},
		{"-n", b.node, "link", "set", "lo", "up"},
		{"-n", b.node, "link", "add", "br0", "type", "bridge"},
		{"-n", b.node, "addr", "add", benchGateIP + "/24", "dev", "br0"},
		{"-n", b.node, "link", "set", "br0", "up"},
	}
	for _, pod := range []struct{ ns, ip, veth string }{{b.srv, benchSrvIP, "vsrv"}, {b.cli, benchCliIP, "vcli"}} {
		steps = append(steps,
			[]string{"-n", b.node, "link", "add", pod.veth, "type", "veth", "peer", "name", "eth0", "netns", pod.ns},
			[]string{"-n", b.node, "link", "set", pod.veth, "master", "br0", "up"},
			[]string{"-n", pod.ns, "link", "set", "lo", "up"},
			[]string{"-n", pod.ns, "addr", "add", pod.ip + "/24", "dev", "eth0"},
			[]string{"-n", pod.ns, "link", "set", "eth0", "up"},
			[]string{"-n", pod.ns, "route", "add", "default", "via", benchGateIP})
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			b.close()
			return nil, err
		}
	}
	// Replies from the server pod to the client pod cross the bridge only: they
	// must pass conntrack to be un-DNATed, as on a node.
	for _, kv := range []string{"net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"} {
		if out, err := exec.Command("ip", "netns", "exec", b.node, "sysctl", "-qw", kv).CombinedOutput(); err != nil {
			b.close()
			return nil, fmt.Errorf("sysctl %s: %v: %s", kv, err, out)
		}
	}
	err := inNetNS(b.srv, func() error {
		var err error
		b.ln, err = net.Listen("tcp", ":8080")
		return err
	})
	if err != nil {
		b.close()
		return nil, err
	}
	go func() {
		_ = http.Serve(b.ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "hello from cloudbox\n")
		}))
	}()
	return b, nil
}

func (b *netBench) close() {
	if b.ln != nil {
		b.ln.Close()
	}
	for _, ns := range []string{b.node, b.srv, b.cli} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// inNetNS runs fn on a thread inside the named namespace; sockets fn opens and
// processes it starts belong to it. The thread is thrown away afterwards.
func inNetNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the runtime discards the thread
		h, err := netns.GetFromName(name)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// rps runs clients in the client pod, each making one new connection per
// request (the DNAT's cost is per connection), for d, and returns requests/s.
func (b *netBench) rps(url string, clients int, d time.Duration) (float64, error) {
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	deadline := time.Now().Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- inNetNS(b.cli, func() error {
				hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
				for time.Now().Before(deadline) {
					resp, err := hc.Get(url)
					if err != nil {
						return err
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					n.Add(1)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(n.Load()) / d.Seconds(), nil
}

func (b *netBench) requests(cfg NetworkConfig, out io.Writer) error {
	svc := proxy.Service{Namespace: "default", Name: "web", ClusterIP: net.ParseIP(benchVIP),
		Ports:     []proxy.ServicePort{{Protocol: proxy.TCP, Port: 80, TargetPort: 8080}},
		Endpoints: []proxy.Endpoint{{IP: net.ParseIP(benchSrvIP)}}}
	p := &proxy.Proxier{}
	if err := inNetNS(b.node, func() error { return p.Sync([]proxy.Service{svc}, nil) }); err != nil {
		return err
	}
	// Pod IP and VIP alternate, twice each, so that the other engineers' load
	// on a shared machine falls on both alike.
	direct, vip := 0.0, 0.0
	for range 2 {
		r, err := b.rps("http://"+benchSrvIP+":8080/", cfg.Clients, cfg.Duration/2)
		if err != nil {
			return fmt.Errorf("straight to the pod: %w", err)
		}
		direct += r / 2
		if r, err = b.rps("http://"+benchVIP+"/", cfg.Clients, cfg.Duration/2); err != nil {
			return fmt.Errorf("through the VIP: %w", err)
		}
		vip += r / 2
	}
	fmt.Fprintf(out, "HTTP straight to the pod IP:      %8.0f req/s (%d clients, a new connection per request)\n", direct, cfg.Clients)
	fmt.Fprintf(out, "HTTP through the Service VIP:     %8.0f req/s\n", vip)
	fmt.Fprintf(out, "  ratio VIP / pod IP: %.2f (target >= 0.9)\n", vip/direct)
	return inNetNS(b.node, p.Cleanup)
}

// benchServices makes n Services of one port with three endpoints each, a
// tenth of them with a node port.
func benchServices(n int) []proxy.Service {
	svcs := make([]proxy.Service, n)
	for i := range svcs {
		s := proxy.Service{Namespace: fmt.Sprintf("ns%d", i%7), Name: fmt.Sprintf("svc%d", i),
			ClusterIP: net.IPv4(10, 96, byte(i>>8), byte(i)),
			Ports:     []proxy.ServicePort{{Name: "http", Protocol: proxy.TCP, Port: 80, TargetPort: 8080}}}
		if i%10 == 0 {
			s.Ports[0].NodePort = 30000 + i
		}
		for e := range 3 {
			k := i*3 + e
			s.Endpoints = append(s.Endpoints, proxy.Endpoint{IP: net.IPv4(10, 244, byte(k>>8), byte(k))})
		}
		svcs[i] = s
	}
	return svcs
}

func (b *netBench) sync(cfg NetworkConfig, out io.Writer) error {
	svcs := benchServices(cfg.Services)
	p := &proxy.Proxier{}
	var first, change, restart time.Duration
	var stats proxy.SyncStats
	err := inNetNS(b.node, func() error {
		start := time.Now()
		var err error
		if stats, err = p.SyncWithStats(svcs, nil); err != nil {
			return err
		}
		first = time.Since(start)
		svcs[0].Endpoints = svcs[0].Endpoints[:2]
		start = time.Now()
		if err := p.Sync(svcs, nil); err != nil {
			return err
		}
		change = time.Since(start)
		start = time.Now()
		if err := (&proxy.Proxier{}).Sync(svcs, nil); err != nil {
			return err
		}
		restart = time.Since(start)
		return p.Cleanup()
	})
	if err != nil {
		return err
	}
	// The peer: one iptables command per rule, as before iptables-restore.
	const perRuleRuns = 50
	var perRule time.Duration
	err = inNetNS(b.node, func() error {
		if out, err := exec.Command("iptables", "-t", "nat", "-N", "CLOUDBOX-BENCH").CombinedOutput(); err != nil {
			return fmt.Errorf("iptables -N: %v: %s", err, out)
		}
		start := time.Now()
		for i := range perRuleRuns {
			if out, err := exec.Command("iptables", "-w", "-t", "nat", "-A", "CLOUDBOX-BENCH", "-d", fmt.Sprintf("10.96.200.%d/32", i),
				"-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", "10.244.0.1:8080").CombinedOutput(); err != nil {
				return fmt.Errorf("iptables -A: %v: %s", err, out)
			}
		}
		perRule = time.Since(start) / perRuleRuns
		_ = exec.Command("iptables", "-t", "nat", "-F", "CLOUDBOX-BENCH").Run()
		return exec.Command("iptables", "-t", "nat", "-X", "CLOUDBOX-BENCH").Run()
	})
	if err != nil {
		return err
	}
	rules := stats.Chains * 2 // about two rules per chain
	peer := perRule * time.Duration(rules)
	fmt.Fprintf(out, "sync %d Services (first):         %8.1f ms (%d nat chains, %d KiB; target <= 1000 ms)\n",
		cfg.Services, ms(first), stats.Chains, stats.PayloadBytes/1024)
	fmt.Fprintf(out, "  peer, one iptables -A per rule: %8.1f ms (%.1f ms x ~%d rules, extrapolated from %d); ratio %.3f\n",
		ms(peer), ms(perRule), rules, perRuleRuns, float64(first)/float64(peer))
	// One endpoint fewer is one rule less: by hand, one iptables -D.
	fmt.Fprintf(out, "  one endpoint fewer:             %8.1f ms; peer, one iptables command: %.1f ms; ratio %.2f\n",
		ms(change), ms(perRule), float64(change)/float64(perRule))
	// A restarted proxy knows nothing of the rules it finds: the first sync is its peer.
	fmt.Fprintf(out, "  after a restart, same rules:    %8.1f ms; peer, the first sync above; ratio %.2f\n",
		ms(restart), float64(restart)/float64(first))
	return nil
}

// podStartNetwork times pod create → Running on a server with the bridge network
// and on one with --pod-network none, one after the other.
func podStartNetwork(ctx context.Context, cfg NetworkConfig, out io.Writer) error {
	dir, err := os.MkdirTemp("", "cloudbox-bench-network-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tarPath := filepath.Join(dir, "busybox.tar")
	if err := testimage.WriteBusyboxTarball(tarPath, "docker.io/library/busybox:1.36"); err != nil {
		return err
	}
	bridgeName := fmt.Sprintf("cbxbn%d", os.Getpid()%100000)
	p50 := map[string]time.Duration{}
	for _, mode := range []string{"bridge", "none"} {
		srvDir := filepath.Join(dir, mode)
		extra := []string{"--pod-network", mode}
		if mode == "bridge" {
			extra = append(extra, "--bridge", bridgeName, "--cluster-cidr", "10.198.0.0/16")
		}
		d, err := timePodStarts(ctx, cfg, srvDir, "/cloudbox-bench-net-"+mode, tarPath, extra...)
		if err != nil {
			return fmt.Errorf("--pod-network %s: %w", mode, err)
		}
		p50[mode] = d
	}
	fmt.Fprintf(out, "pod create -> Running, --pod-network none:   p50 %6.1f ms (%d pods)\n", ms(p50["none"]), cfg.Pods)
	fmt.Fprintf(out, "pod create -> Running, --pod-network bridge: p50 %6.1f ms\n", ms(p50["bridge"]))
	fmt.Fprintf(out, "  the network adds %.1f ms at p50 (target <= 30 ms); ratio %.2f\n",
		ms(p50["bridge"]-p50["none"]), float64(p50["bridge"])/float64(p50["none"]))
	return nil
}

func timePodStarts(ctx context.Context, cfg NetworkConfig, srvDir, cgroupParent, tarPath string, extra ...string) (time.Duration, error) {
	srv, _, err := startServer(ctx, cfg.Binary, srvDir, cgroupParent, extra...)
	if err != nil {
		return 0, err
	}
	defer srv.remove()
	if err := importImage(ctx, srv.client, tarPath); err != nil {
		return 0, err
	}
	w, err := newPodWatcher(ctx, srv.client)
	if err != nil {
		return 0, err
	}
	// The first pod waits for the node's subnet; it is not counted.
	if _, err := w.timeTo(ctx, srv.client, benchRunPod("warm", "sleep", "3600"), api.PodRunning); err != nil {
		return 0, err
	}
	var ds []time.Duration
	for i := range cfg.Pods {
		d, err := w.timeTo(ctx, srv.client, benchRunPod(fmt.Sprintf("net-%d", i), "sleep", "3600"), api.PodRunning)
		if err != nil {
			return 0, err
		}
		ds = append(ds, d)
	}
	if err := deletePods(ctx, srv.client); err != nil {
		return 0, err
	}
	return percentile(ds, 50), nil
}
