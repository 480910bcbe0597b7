package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

const servedDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: busybox:1.36
        command: ["sh", "-c", "hostname > /var/www/index.html; exec httpd -f -p 8080 -h /var/www"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          exec: {command: ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]}
          periodSeconds: 1
        lifecycle:
          # Leave the Service's endpoints before stopping, as Kubernetes advises.
          preStop: {exec: {command: ["sleep", "2"]}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sh
    image: busybox:1.36
    # Once the test writes a URL to /tmp/start, request it, one wget after another,
    # until /tmp/stop appears; then write "summary ok=N fail=M" to /tmp/summary.
    # Each failure is logged with its time; a request hanging for 10 s is one. The loop is the container's own
    # process, so no exec stream has to last through the rollout.
    command:
    - sh
    - -c
    - |
      while [ ! -f /tmp/start ]; do sleep 0.1; done
      url=$(cat /tmp/start); ok=0; fail=0
      while [ ! -f /tmp/stop ]; do
        if out=$(timeout 10 wget -qO- "$url" 2>&1); then ok=$((ok+1)); else fail=$((fail+1)); echo "$(date +%T) $out" >> /tmp/failures; fi
      done
      echo "summary ok=$ok fail=$fail" > /tmp/summary.tmp && mv /tmp/summary.tmp /tmp/summary
      exec sleep 3600
`

// TestServiceServesEveryReplica: a Deployment of 3 behind a Service answers from all
// three, and serves every request of a client looping on it through set image and
// rollout undo.
func TestServiceServesEveryReplica(t *testing.T) {
	// Addresses of its own: a test that shares them with another (or a bridge a
	// killed run left with the same subnet) sends the pods' packets astray.
	c, cl, _ := bridgeClusterWith(t, freeClusterCIDR(t, "10.250.0.0/16"), []string{"--service-cidr", "10.98.0.0/16"}, "1.36", "1.37")
	c.must("apply", "-f", writeFile(t, "web.yaml", servedDeployment))
	c.must("rollout", "status", "deploy/web", "--timeout", "90s")
	waitPodCond(t, cl, "client", "Running", running)
	var svc api.Service
	if err := json.Unmarshal([]byte(c.must("get", "svc", "web", "-o", "json")), &svc); err != nil {
		t.Fatal(err)
	}
	// By cluster IP: name lookups through the search path are the DNS tests' concern
	// (a short name sometimes failed here after another test's server had run; see the
	// network issue's note).
	url := "http://" + svc.Spec.ClusterIP + "/"
	// Wait until the Service answers: the node's rules follow the endpoints
	// asynchronously, and from here there is nothing to watch but the answer.
	waitServed := func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			// A SYN sent before the node's rules existed hangs on its conntrack entry
			// (no DNAT) until TCP gives up: bound each try.
			if out, _, err := c.run("", "exec", "client", "--", "timeout", "5", "wget", "-qO-", url); err == nil && strings.TrimSpace(out) != "" {
				return
			}
			if time.Now().After(deadline) {
				rc, _, _ := c.run("", "exec", "client", "--", "cat", "/etc/resolv.conf")
				byIP, _, ipErr := c.run("", "exec", "client", "--", "wget", "-qO-", "http://"+svc.Spec.ClusterIP+"/")
				ns, _, _ := c.run("", "exec", "client", "--", "nslookup", "web.default.svc.cluster.local")
				t.Fatalf("the Service never answered\nresolv.conf:\n%s\nby IP: %q %v\nnslookup:\n%s", rc, byIP, ipErr, ns)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitServed()

	// Every replica serves: 30 requests through the Service reach 3 hostnames.
	out := c.must("exec", "client", "--", "sh", "-c", "for i in $(seq 1 30); do wget -qO- "+url+"; done")
	seen := map[string]bool{}
	for _, line := range strings.Fields(out) {
		seen[line] = true
	}
	if len(seen) != 3 {
		t.Fatalf("30 requests reached %d pods, want 3: %v", len(seen), seen)
	}

	// A client looping on the Service sees no failed request while set image rolls
	// the Deployment to 1.37 and rollout undo back to 1.36: readiness gates the new
	// pods' entry, and a deleted pod leaves the endpoints at once while its preStop
	// hook keeps it serving until the node's rules have followed.
	c.must("exec", "client", "--", "sh", "-c", "echo "+url+" > /tmp/start.tmp && mv /tmp/start.tmp /tmp/start")
	c.must("set", "image", "deploy/web", "httpd=busybox:1.37")
	c.must("rollout", "status", "deploy/web", "--timeout", "120s")
	waitSettled(t, cl, "busybox:1.37")
	c.must("rollout", "undo", "deploy/web")
	c.must("rollout", "status", "deploy/web", "--timeout", "120s")
	waitSettled(t, cl, "busybox:1.36")
	out = c.must("exec", "client", "--", "sh", "-c", `touch /tmp/stop
for i in $(seq 300); do [ -f /tmp/summary ] && break; sleep 0.1; done
cat /tmp/summary; cat /tmp/failures 2>/dev/null; true`)
	var ok, failed int
	if _, err := fmt.Sscanf(out, "summary ok=%d fail=%d", &ok, &failed); err != nil {
		t.Fatalf("no summary from the client's loop: %v\n%s", err, out)
	}
	t.Logf("client loop: %d requests served, %d failed", ok, failed)
	if failed > 0 {
		// The CLOUDBOX chains are the host's: another cloudbox server on this host
		// (another test run) rewrites them with its own Services, and ours then fail
		// (refused, or not translated at all). Each server's bridge shows here.
		save, _ := exec.Command("iptables-save").Output()
		var forward []string
		for _, l := range strings.Split(string(save), "\n") {
			if strings.HasPrefix(l, "-A CLOUDBOX-FORWARD -i ") {
				forward = append(forward, l)
			}
		}
		t.Errorf("%d of %d requests through the Service failed during the rollouts:\n%s\nservers' bridges on this host (more than one spoils the test):\n%s",
			failed, ok+failed, out, strings.Join(forward, "\n"))
	}
	if ok < 20 {
		t.Errorf("the client's loop made only %d requests: it did not run through the rollouts", ok)
	}
	c.must("delete", "-f", writeFile(t, "web2.yaml", servedDeployment))
}

// waitSettled waits until the web Deployment's pods are exactly three, all running
// image and none terminating: the rollout's old pods are gone.
func waitSettled(t *testing.T, cl *client.Client, image string) {
	t.Helper()
	k, _ := api.LookupKind("pods")
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := cl.ListAll(context.Background(), k, "default", client.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		settled := len(l.Items) == 3
		for _, o := range l.Items {
			p := o.(*api.Pod)
			settled = settled && p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == image && running(p)
		}
		if settled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the web pods did not settle on %s: %d pods", image, len(l.Items))
		}
		time.Sleep(100 * time.Millisecond) // waiting on several pods' states at once
	}
}
