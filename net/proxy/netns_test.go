package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Everything here happens in network namespaces the tests create and
// delete; nothing is added to the namespace the tests run in.

// requireNetNS skips when the test cannot make namespaces and rules.
func requireNetNS(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create network namespaces and iptables rules")
	}
	for _, bin := range []string{"ip", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Skipf("needs %s: %v", bin, err)
		}
	}
}

var nsSeq atomic.Int64

func run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNS creates a network namespace with lo up and deletes it when the test
// ends.
func newNS(tb testing.TB, role string) string {
	tb.Helper()
	name := fmt.Sprintf("cbxp%d-%d-%s", os.Getpid(), nsSeq.Add(1), role)
	run(tb, "ip", "netns", "add", name)
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(tb, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// inNS runs fn on a thread inside netns ns: sockets fn opens, and processes
// it execs, belong to ns.
func inNS(tb testing.TB, ns string, fn func()) {
	tb.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		tb.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		tb.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		tb.Fatalf("setns %s: %v", ns, err)
	}
	defer func() {
		// A thread that cannot return stays locked, so the runtime
		// discards it with the goroutine.
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	fn()
}

// saveCloudbox returns the CLOUDBOX lines of iptables-save in ns.
func saveCloudbox(tb testing.TB, ns string) string {
	tb.Helper()
	var b strings.Builder
	for _, table := range []string{"nat", "filter"} {
		out := run(tb, "ip", "netns", "exec", ns, "iptables-save", "-t", table)
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if strings.Contains(sc.Text(), "CLOUDBOX") {
				b.WriteString(table + " " + sc.Text() + "\n")
			}
		}
	}
	return b.String()
}

// cluster is a node netns with a bridge and pods behind veths, each pod
// serving its name on podPort, plus an "outside" netns routed to the node.
type cluster struct {
	node, ext string
	nodeIP    string // node's address on the bridge
	nodeExtIP string // node's address toward ext
	pods      []*pod
}

type pod struct {
	name, ns, ip string
	accepted     atomic.Int64
}

const (
	podPort   = 8080
	bridgeNet = "10.250.0"
	extNet    = "10.251.0"
)

func newCluster(t *testing.T, npods int) *cluster {
	t.Helper()
	c := &cluster{
		node:      newNS(t, "node"),
		ext:       newNS(t, "ext"),
		nodeIP:    bridgeNet + ".1",
		nodeExtIP: extNet + ".1",
	}
	ipn := func(args ...string) { run(t, "ip", append([]string{"-n", c.node}, args...)...) }
	ipn("link", "add", "br0", "type", "bridge")
	ipn("addr", "add", c.nodeIP+"/24", "dev", "br0")
	ipn("link", "set", "br0", "up")
	// Locally generated traffic to a VIP needs a route before OUTPUT's DNAT.
	ipn("route", "add", "10.96.0.0/16", "dev", "br0")
	run(t, "ip", "netns", "exec", c.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	ipn("link", "add", "vext", "type", "veth", "peer", "name", "eth0", "netns", c.ext)
	ipn("addr", "add", c.nodeExtIP+"/24", "dev", "vext")
	ipn("link", "set", "vext", "up")
	run(t, "ip", "-n", c.ext, "addr", "add", extNet+".2/24", "dev", "eth0")
	run(t, "ip", "-n", c.ext, "link", "set", "eth0", "up")

	for i := range npods {
		p := &pod{name: fmt.Sprintf("pod%d", i+1), ns: newNS(t, fmt.Sprintf("pod%d", i+1)), ip: fmt.Sprintf("%s.%d", bridgeNet, 11+i)}
		veth := fmt.Sprintf("vp%d", i+1)
		ipn("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", p.ns)
		ipn("link", "set", veth, "master", "br0", "up")
		// br_netfilter is loaded here (bridge-nf-call-iptables=1), so a
		// pod reaching itself through a DNAT goes back out the port it
		// came in on: the bridge must allow hairpin, as the CNI bridge
		// plugin's hairpinMode does.
		ipn("link", "set", veth, "type", "bridge_slave", "hairpin", "on")
		run(t, "ip", "-n", p.ns, "addr", "add", p.ip+"/24", "dev", "eth0")
		run(t, "ip", "-n", p.ns, "link", "set", "eth0", "up")
		run(t, "ip", "-n", p.ns, "route", "add", "default", "via", c.nodeIP)
		p.serve(t)
		c.pods = append(c.pods, p)
	}
	return c
}

// serve answers every connection on podPort with the pod's name.
func (p *pod) serve(t *testing.T) {
	var ln net.Listener
	inNS(t, p.ns, func() {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", podPort))
		if err != nil {
			t.Fatal(err)
		}
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, p.name)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
}

// endpoints returns the pods' addresses as endpoints.
func (c *cluster) endpoints(pods ...*pod) []Endpoint {
	var eps []Endpoint
	for _, p := range pods {
		eps = append(eps, Endpoint{IP: net.ParseIP(p.ip)})
	}
	return eps
}

// ask makes n connections from ns to addr and counts the answers by name.
func ask(t *testing.T, ns, addr string, n int) (map[string]int, error) {
	t.Helper()
	got := map[string]int{}
	var firstErr error
	inNS(t, ns, func() {
		for range n {
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				firstErr = err
				return
			}
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			b, err := io.ReadAll(conn)
			conn.Close()
			if err != nil {
				firstErr = err
				return
			}
			got[string(b)]++
		}
	})
	return got, firstErr
}
