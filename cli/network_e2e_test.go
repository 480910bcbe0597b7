package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/testenv"
	"github.com/cloudbox/cloudbox/internal/testimage"
)

const twoPods = `apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: server}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox:1.36
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    readinessProbe:
      exec: {command: ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: sh, image: busybox:1.36, command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: server}
  ports:
  - {port: 80, targetPort: 8080}
`

// bridgeCluster runs the server as a process with the bridge pod network (its own
// bridge name and cluster CIDR), imports busybox under each tag, and at the end
// cleans up and checks the host's iptables and links are as before. The tests that
// use it are the only ones that touch the host's iptables.
func bridgeCluster(t *testing.T, clusterCIDR string, tags ...string) (*cluster, *client.Client) {
	t.Helper()
	c, cl, _ := restartableBridgeCluster(t, clusterCIDR, tags...)
	return c, cl
}

// restartableBridgeCluster is bridgeCluster that also returns restart, which kills
// the server with SIGKILL, starts it again on the same data dir and returns a
// client once it is ready.
func restartableBridgeCluster(t *testing.T, clusterCIDR string, tags ...string) (*cluster, *client.Client, func() *client.Client) {
	t.Helper()
	return bridgeClusterWith(t, clusterCIDR, nil, tags...)
}

// bridgeClusterWith is restartableBridgeCluster with more server flags.
func bridgeClusterWith(t *testing.T, clusterCIDR string, serverArgs []string, tags ...string) (*cluster, *client.Client, func() *client.Client) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
	dir := t.TempDir()
	images := t.TempDir()
	for _, tag := range tags {
		if err := testimage.WriteBusyboxTarball(filepath.Join(images, tag+".tar"), "docker.io/library/busybox:"+tag); err != nil {
			t.Skipf("%v", err)
		}
	}
	forward, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	bridgeName := testenv.Unique("cbxb")
	cgroup := testenv.CgroupParent(t)
	args := append([]string{"--pod-network", "bridge", "--bridge", bridgeName, "--cluster-cidr", clusterCIDR}, serverArgs...)
	sp := startServerProcess(t, dir, cgroup, args...)
	cl := waitReady(t, sp, dir)
	c := &cluster{t: t, config: filepath.Join(dir, "admin.config"), dir: dir}
	t.Cleanup(func() {
		sp.kill()
		if out, errOut, err := c.run("", "server", "--cleanup", "--data-dir", dir, "--cgroup-parent", cgroup); err != nil {
			t.Errorf("cleanup: %v\n%s%s", err, out, errOut)
		}
		// Containers' and VMs' (QEMU runs in its launcher pod's cgroup) alike.
		if left := processesIn(t, cgroup); len(left) > 0 {
			t.Errorf("processes left in the cgroup parent after cleanup: %v", left)
		}
		_ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644)
		if save, _ := exec.Command("iptables-save").Output(); strings.Contains(string(save), "CLOUDBOX") {
			t.Errorf("CLOUDBOX rules left after cleanup:\n%s", save)
		}
		if _, err := os.Stat("/sys/class/net/" + bridgeName); err == nil {
			t.Errorf("bridge %s left after cleanup", bridgeName)
		}
	})
	for _, tag := range tags {
		c.must("image", "import", filepath.Join(images, tag+".tar"))
	}
	restart := func() *client.Client {
		t.Helper()
		sp.kill()
		sp = startServerProcess(t, dir, cgroup, args...)
		return waitReady(t, sp, dir)
	}
	return c, cl, restart
}

// freeClusterCIDR returns preferred, or if an address of the host already lies in it
// (a bridge a killed test run left behind routes that subnet astray), the first
// 10.X.0.0/16 from 10.230 that none does.
func freeClusterCIDR(t *testing.T, preferred string) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	taken := func(cidr string) bool {
		_, n, _ := net.ParseCIDR(cidr)
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && n.Contains(ipn.IP) {
				return true
			}
		}
		return false
	}
	if !taken(preferred) {
		return preferred
	}
	for x := 230; x < 250; x++ {
		if c := fmt.Sprintf("10.%d.0.0/16", x); !taken(c) {
			t.Logf("%s is in use on this host; using %s", preferred, c)
			return c
		}
	}
	t.Skipf("no free cluster CIDR on this host")
	return ""
}

// TestPodsReachEachOtherByIP: two pods talk by IP, through a Service's cluster IP, and
// find the Service by name.
func TestPodsReachEachOtherByIP(t *testing.T) {
	cidr := freeClusterCIDR(t, "10.251.0.0/16")
	c, cl := bridgeCluster(t, cidr, "1.36")
	c.must("apply", "-f", writeFile(t, "pods.yaml", twoPods))
	hasIP := func(p *api.Pod) bool {
		return running(p) && strings.HasPrefix(p.Status.PodIP, strings.TrimSuffix(cidr, "0.0/16"))
	}
	server := waitPodCond(t, cl, "server", "Ready with an address", func(p *api.Pod) bool {
		r := p.Status.Condition(api.PodReady)
		return hasIP(p) && r != nil && r.Status == api.ConditionTrue
	})
	client := waitPodCond(t, cl, "client", "Running with an address", hasIP)
	if server.Status.PodIP == client.Status.PodIP {
		t.Fatalf("both pods got %s", server.Status.PodIP)
	}
	if out := c.must("get", "pods", "-o", "wide"); !strings.Contains(out, server.Status.PodIP) {
		t.Fatalf("get pods -o wide lacks the pod IP:\n%s", out)
	}
	out := c.must("exec", "client", "--", "wget", "-qO-", "http://"+server.Status.PodIP+":8080/")
	if strings.TrimSpace(out) != "hello from cloudbox" {
		t.Fatalf("client -> server by IP: %q", out)
	}
	// Through the Service's cluster IP, once the node's proxy has its rules.
	var svc api.Service
	if err := json.Unmarshal([]byte(c.must("get", "svc", "web", "-o", "json")), &svc); err != nil || svc.Spec.ClusterIP == "" {
		t.Fatalf("service: %v %+v", err, svc.Spec)
	}
	waitServiceProgrammed(t, svc.Spec.ClusterIP)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, err := c.run("", "exec", "client", "--", "timeout", "5", "wget", "-qO-", "http://"+svc.Spec.ClusterIP+"/")
		if err == nil && strings.TrimSpace(out) == "hello from cloudbox" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client -> service %s: %q %v", svc.Spec.ClusterIP, out, err)
		}
		time.Sleep(200 * time.Millisecond) // the proxy's rules arrive asynchronously; nothing to watch for from here
	}
	// The cluster DNS answers the Service's name with its cluster IP.
	out = c.must("exec", "client", "--", "nslookup", "web.default.svc.cluster.local")
	if !strings.Contains(out, svc.Spec.ClusterIP) {
		t.Fatalf("nslookup web.default.svc.cluster.local:\n%s", out)
	}
	if out := c.must("exec", "client", "--", "cat", "/etc/resolv.conf"); !strings.Contains(out, "search default.svc.cluster.local") {
		t.Fatalf("the pod's resolv.conf:\n%s", out)
	}
	// The short name, through the search path, with the resolver wget uses (libc's:
	// A and AAAA at once), not only busybox's nslookup.
	if out, err := podGet(c, "default", "client", "http://web/"); err != nil || out != "hello from cloudbox" {
		t.Fatalf("client -> http://web/: %q %v", out, err)
	}
	c.must("delete", "pod", "server", "client")
	c.must("delete", "svc", "web")
}

// waitPodIn watches a pod of namespace ns until cond holds.
func waitPodIn(t *testing.T, cl *client.Client, ns, name, what string, cond func(*api.Pod) bool) *api.Pod {
	t.Helper()
	k, _ := api.LookupKind("pods")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	events, err := cl.Watch(ctx, k, ns, client.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var last *api.Pod
	for ev := range events {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if p, ok := ev.Object.(*api.Pod); ok && ev.Type != "BOOKMARK" {
			last = p
			if cond(p) {
				return p
			}
		}
	}
	t.Fatalf("pod %s/%s never became %s; last: %+v", ns, name, what, last)
	return nil
}

// eventually retries try until it returns nil or the deadline passes. The rules a
// node programs arrive asynchronously and the test has nothing to watch for them.
func eventually(t *testing.T, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond) // see above
	}
}

// podGet fetches url from inside pod ns/name with busybox wget.
func podGet(c *cluster, ns, name, url string) (string, error) {
	// timeout: a packet sent before the node's rules exist is never answered (it
	// follows the default route), and busybox wget (Debian's has no -T) would wait out
	// TCP's two-minute connect timeout.
	out, errOut, err := c.run("", "exec", "-n", ns, name, "--", "timeout", "5", "wget", "-qO-", url)
	if err != nil {
		return "", fmt.Errorf("%v: %s%s", err, out, errOut)
	}
	return strings.TrimSpace(out), nil
}

// nodeGateway is the bridge address of the test's node: an address of the node
// that the test created.
func nodeGateway(t *testing.T, cl *client.Client) string {
	t.Helper()
	k, _ := api.LookupKind("nodes")
	o, err := cl.Get(context.Background(), k, "", "e2e-node")
	if err != nil {
		t.Fatal(err)
	}
	_, subnet, err := net.ParseCIDR(o.(*api.Node).Spec.PodCIDR)
	if err != nil {
		t.Fatalf("node podCIDR: %v", err)
	}
	gw := subnet.IP.To4()
	gw[3]++
	return gw.String()
}

const hostPortPod = `apiVersion: v1
kind: Pod
metadata: {name: hp, labels: {app: hp}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox:1.36
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    ports:
    - {containerPort: 8080, hostPort: 18931}
---
apiVersion: v1
kind: Service
metadata: {name: hp}
spec:
  selector: {app: hp}
  ports:
  - {port: 80, targetPort: 8080}
`

// TestHostPortAndHairpin: a container's hostPort answers on the node's address, and
// a pod reaches itself through its own Service (hairpin).
func TestHostPortAndHairpin(t *testing.T) {
	c, cl := bridgeCluster(t, freeClusterCIDR(t, "10.252.0.0/16"), "1.36")
	c.must("apply", "-f", writeFile(t, "hp.yaml", hostPortPod))
	pod := waitPodCond(t, cl, "hp", "Running with an address", func(p *api.Pod) bool { return running(p) && p.Status.PodIP != "" })
	gw := nodeGateway(t, cl)
	t.Run("HostPort", func(t *testing.T) {
		hc := &http.Client{Timeout: 3 * time.Second}
		eventually(t, "GET the hostPort on the node's address "+gw, func() error {
			resp, err := hc.Get("http://" + net.JoinHostPort(gw, "18931") + "/")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if strings.TrimSpace(string(b)) != "hello from cloudbox" {
				return fmt.Errorf("answered %q", b)
			}
			return nil
		})
		save, _ := exec.Command("iptables-save", "-t", "nat").Output()
		if !strings.Contains(string(save), pod.Status.PodIP+":8080") {
			t.Errorf("no hostPort DNAT to %s:8080:\n%s", pod.Status.PodIP, save)
		}
	})
	t.Run("Hairpin", func(t *testing.T) {
		var svc api.Service
		if err := json.Unmarshal([]byte(c.must("get", "svc", "hp", "-o", "json")), &svc); err != nil {
			t.Fatal(err)
		}
		// The Service has one endpoint, the pod asking: only hairpin answers.
		eventually(t, "the pod through its own Service "+svc.Spec.ClusterIP, func() error {
			out, err := podGet(c, "default", "hp", "http://"+svc.Spec.ClusterIP+"/")
			if err == nil && out != "hello from cloudbox" {
				err = fmt.Errorf("answered %q", out)
			}
			return err
		})
	})
	c.must("delete", "pod", "hp")
	c.must("delete", "svc", "hp")
	// The hostPort rule goes with the pod.
	eventually(t, "hostPort rule removed", func() error {
		save, _ := exec.Command("iptables-save", "-t", "nat").Output()
		if strings.Contains(string(save), "18931") {
			return errors.New("still there")
		}
		return nil
	})
}

// cloudboxRules is iptables-save's CLOUDBOX lines without counters: what a restart
// must leave identical.
// waitServiceProgrammed waits until this host's nat table sends the cluster IP to
// endpoints, so that a test sends nothing to it before (such a packet would leave by
// the default route).
func waitServiceProgrammed(t *testing.T, clusterIP string) {
	t.Helper()
	eventually(t, "the rules for "+clusterIP, func() error {
		for _, l := range strings.Split(cloudboxRules(t), "\n") {
			if strings.Contains(l, "-d "+clusterIP+"/32") && strings.Contains(l, "cluster IP") {
				return nil
			}
		}
		return errors.New("no cluster IP rule yet")
	})
}

func cloudboxRules(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	var b strings.Builder
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "CLOUDBOX") {
			b.WriteString(counters.ReplaceAllString(l, "") + "\n")
		}
	}
	return b.String()
}

// waitLogged waits until the server log in dir holds line n times.
func waitLogged(t *testing.T, dir, line string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%q logged %d times", line, n), func() error {
		b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		if got := strings.Count(string(b), line); got < n {
			return fmt.Errorf("logged %d times", got)
		}
		return nil
	})
}

// podIPs lists every pod's address by name, failing on two pods with one address.
func podIPs(t *testing.T, c *cluster) (ips map[string]string, uids map[string]string) {
	t.Helper()
	var list struct{ Items []api.Pod }
	if err := json.Unmarshal([]byte(c.must("get", "pods", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	ips, uids = map[string]string{}, map[string]string{}
	owner := map[string]string{}
	for _, p := range list.Items {
		uids[p.UID] = p.Name
		if p.Status.PodIP == "" {
			continue
		}
		if o, dup := owner[p.Status.PodIP]; dup {
			t.Errorf("pods %s and %s share %s", o, p.Name, p.Status.PodIP)
		}
		owner[p.Status.PodIP] = p.Name
		ips[p.Name] = p.Status.PodIP
	}
	return ips, uids
}

func churnPod(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: sh, image: busybox:1.36, command: ["sleep", "3600"]}
`, name)
}

// TestNetworkSurvivesServerRestart: a restart of the server leaves the CLOUDBOX
// rules identical and pods' addresses unchanged; a kill -9 in the middle of pod
// churn leaks and doubles no address.
func TestNetworkSurvivesServerRestart(t *testing.T) {
	c, cl, restart := restartableBridgeCluster(t, freeClusterCIDR(t, "10.253.0.0/16"), "1.36")
	c.must("apply", "-f", writeFile(t, "pods.yaml", twoPods))
	for _, name := range []string{"server", "client"} {
		waitPodCond(t, cl, name, "Running with an address", func(p *api.Pod) bool { return running(p) && p.Status.PodIP != "" })
	}
	var svc api.Service
	if err := json.Unmarshal([]byte(c.must("get", "svc", "web", "-o", "json")), &svc); err != nil {
		t.Fatal(err)
	}
	// Steady: the Service answers, so its endpoint is programmed, in both tables (the
	// nat table commits before the filter table, whose REJECT for a Service without
	// endpoints may still be there for a moment after the first answer).
	eventually(t, "client -> service", func() error {
		if _, err := podGet(c, "default", "client", "http://"+svc.Spec.ClusterIP+"/"); err != nil {
			return err
		}
		if rules := cloudboxRules(t); strings.Contains(rules, "default/web:/tcp has no endpoints") {
			return errors.New("the filter table still rejects web")
		}
		return nil
	})

	t.Run("RulesIdentical", func(t *testing.T) {
		before := cloudboxRules(t)
		ipsBefore, _ := podIPs(t, c)
		cl = restart()
		waitLogged(t, c.dir, "service rules synced", 2)
		waitLogged(t, c.dir, "pod network ready", 2)
		for name, ip := range ipsBefore {
			waitPodCond(t, cl, name, "Running with "+ip, func(p *api.Pod) bool { return running(p) && p.Status.PodIP == ip })
		}
		if _, err := podGet(c, "default", "client", "http://"+svc.Spec.ClusterIP+"/"); err != nil {
			t.Errorf("client -> service after restart: %v", err)
		}
		if after := cloudboxRules(t); after != before {
			t.Errorf("rules changed across a restart:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	t.Run("KillDuringChurn", func(t *testing.T) {
		var created atomic.Int64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				name := fmt.Sprintf("churn-%d", i)
				// The server is down for a while: retry until it answers.
				for {
					if _, _, err := c.run("", "apply", "-f", writeFile(t, name+".yaml", churnPod(name))); err == nil {
						break
					}
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
				created.Add(1)
				if i >= 2 {
					_, _, _ = c.run("", "delete", "pod", fmt.Sprintf("churn-%d", i-2))
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
		eventually(t, "churn under way", func() error {
			if created.Load() < 6 {
				return errors.New("fewer than 6 pods created")
			}
			return nil
		})
		beforeKill, _ := podIPs(t, c)
		cl = restart()
		n := created.Load()
		eventually(t, "churn after the restart", func() error {
			if created.Load() < n+6 {
				return errors.New("fewer than 6 pods created since the restart")
			}
			return nil
		})
		close(stop)
		<-done

		// Every pod left settles with an address; those that had one kept it.
		ips, _ := podIPs(t, c)
		for name := range ips {
			if !strings.HasPrefix(name, "churn-") {
				continue
			}
			waitPodCond(t, cl, name, "Running with an address", func(p *api.Pod) bool { return running(p) && p.Status.PodIP != "" })
		}
		ips, uids := podIPs(t, c)
		for name, ip := range beforeKill {
			if now, ok := ips[name]; ok && now != ip {
				t.Errorf("pod %s had %s before the kill, %s after", name, ip, now)
			}
		}
		for name := range ips {
			if strings.HasPrefix(name, "churn-") {
				c.must("delete", "pod", name)
			}
		}
		eventually(t, "churn pods gone", func() error {
			ips, _ := podIPs(t, c)
			for name := range ips {
				if strings.HasPrefix(name, "churn-") {
					return fmt.Errorf("%s still there", name)
				}
			}
			return nil
		})
		// The pool holds exactly the pods that exist, at the addresses the API shows.
		ips, uids = podIPs(t, c)
		eventually(t, "pool matches the pods", func() error {
			b, err := os.ReadFile(filepath.Join(c.dir, "agent", "ipam.json"))
			if err != nil {
				return err
			}
			var pool struct{ Owners map[string]string }
			if err := json.Unmarshal(b, &pool); err != nil {
				return err
			}
			for uid, ip := range pool.Owners {
				name, ok := uids[uid]
				if !ok {
					return fmt.Errorf("pool holds %s for pod %s, which no longer exists", ip, uid)
				}
				if ips[name] != ip {
					return fmt.Errorf("pool holds %s for %s, the API %q", ip, name, ips[name])
				}
			}
			if len(pool.Owners) != len(ips) {
				return fmt.Errorf("pool holds %d addresses for %d pods with one", len(pool.Owners), len(ips))
			}
			return nil
		})
	})
	c.must("delete", "pod", "server", "client")
	c.must("delete", "svc", "web")
}

const isolationManifest = `apiVersion: v1
kind: Namespace
metadata: {name: iso, labels: {cloudbox.io/network-isolation: "true"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: iso}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox:1.36
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: iso}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: sh, image: busybox:1.36, command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: other}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: sh, image: busybox:1.36, command: ["sleep", "3600"]}
`

// TestNamespaceIsolation: pods of a namespace labelled for isolation accept
// traffic from their own namespace and from the node, not from other namespaces,
// until the label goes.
func TestNamespaceIsolation(t *testing.T) {
	c, cl := bridgeCluster(t, freeClusterCIDR(t, "10.254.0.0/16"), "1.36")
	c.must("apply", "-f", writeFile(t, "iso.yaml", isolationManifest))
	hasIP := func(p *api.Pod) bool { return running(p) && p.Status.PodIP != "" }
	server := waitPodIn(t, cl, "iso", "server", "Running with an address", hasIP)
	waitPodIn(t, cl, "iso", "client", "Running with an address", hasIP)
	waitPodIn(t, cl, "other", "client", "Running with an address", hasIP)
	url := "http://" + server.Status.PodIP + ":8080/"

	eventually(t, "other/client refused by iso/server", func() error {
		if _, err := podGet(c, "other", "client", url); err == nil {
			return errors.New("answered")
		}
		return nil
	})
	if out, err := podGet(c, "iso", "client", url); err != nil || out != "hello from cloudbox" {
		t.Errorf("iso/client -> iso/server: %q %v", out, err)
	}
	// The node itself (probes) gets in.
	hc := &http.Client{Timeout: 3 * time.Second}
	if resp, err := hc.Get(url); err != nil {
		t.Errorf("node -> iso/server: %v", err)
	} else {
		resp.Body.Close()
	}

	nsKind, _ := api.LookupKind("namespaces")
	if _, err := cl.Modify(context.Background(), nsKind, "", "iso", func(o api.Object) error {
		delete(o.(*api.Namespace).Labels, "cloudbox.io/network-isolation")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "other/client -> iso/server once the label is gone", func() error {
		_, err := podGet(c, "other", "client", url)
		return err
	})
	c.must("delete", "pod", "-n", "iso", "server", "client")
	c.must("delete", "pod", "-n", "other", "client")
}

// TestIsolateNamespacesFlag: with --isolate-namespaces every namespace but
// kube-system is isolated without a label, and a label "false" opts out.
func TestIsolateNamespacesFlag(t *testing.T) {
	c, cl, _ := bridgeClusterWith(t, freeClusterCIDR(t, "10.249.0.0/16"), []string{"--isolate-namespaces"}, "1.36")
	manifest := strings.NewReplacer("iso, labels: {cloudbox.io/network-isolation: \"true\"}", "iso").Replace(isolationManifest)
	c.must("apply", "-f", writeFile(t, "iso.yaml", manifest))
	hasIP := func(p *api.Pod) bool { return running(p) && p.Status.PodIP != "" }
	server := waitPodIn(t, cl, "iso", "server", "Running with an address", hasIP)
	waitPodIn(t, cl, "iso", "client", "Running with an address", hasIP)
	waitPodIn(t, cl, "other", "client", "Running with an address", hasIP)
	url := "http://" + server.Status.PodIP + ":8080/"
	eventually(t, "other/client refused by iso/server without a label", func() error {
		if _, err := podGet(c, "other", "client", url); err == nil {
			return errors.New("answered")
		}
		return nil
	})
	if out, err := podGet(c, "iso", "client", url); err != nil || out != "hello from cloudbox" {
		t.Errorf("iso/client -> iso/server: %q %v", out, err)
	}
	nsKind, _ := api.LookupKind("namespaces")
	if _, err := cl.Modify(context.Background(), nsKind, "", "iso", func(o api.Object) error {
		ns := o.(*api.Namespace)
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels["cloudbox.io/network-isolation"] = "false"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "other/client -> iso/server once iso opts out", func() error {
		_, err := podGet(c, "other", "client", url)
		return err
	})
	c.must("delete", "pod", "-n", "iso", "server", "client")
	c.must("delete", "pod", "-n", "other", "client")
}
