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
	"strings"
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
	sp := startServerProcess(t, dir, cgroup, "--pod-network", "bridge", "--bridge", bridgeName, "--cluster-cidr", clusterCIDR)
	cl := waitReady(t, sp, dir)
	c := &cluster{t: t, config: filepath.Join(dir, "admin.config"), dir: dir}
	t.Cleanup(func() {
		sp.kill()
		if out, errOut, err := c.run("", "server", "--cleanup", "--data-dir", dir, "--cgroup-parent", cgroup); err != nil {
			t.Errorf("cleanup: %v\n%s%s", err, out, errOut)
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
	return c, cl
}

// TestPodsReachEachOtherByIP: two pods talk by IP, through a Service's cluster IP, and
// find the Service by name.
func TestPodsReachEachOtherByIP(t *testing.T) {
	c, cl := bridgeCluster(t, "10.251.0.0/16", "1.36")
	c.must("apply", "-f", writeFile(t, "pods.yaml", twoPods))
	hasIP := func(p *api.Pod) bool { return running(p) && strings.HasPrefix(p.Status.PodIP, "10.251.") }
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, err := c.run("", "exec", "client", "--", "wget", "-qO-", "http://"+svc.Spec.ClusterIP+"/")
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
	out, errOut, err := c.run("", "exec", "-n", ns, name, "--", "wget", "-qO-", url)
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
	c, cl := bridgeCluster(t, "10.252.0.0/16", "1.36")
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
