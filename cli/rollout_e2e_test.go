package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
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
  - {name: sh, image: busybox:1.36, command: ["sleep", "3600"]}
`

// TestServiceServesEveryReplica: a Deployment of 3 behind a Service answers from all
// three, and again after a rollout.
func TestServiceServesEveryReplica(t *testing.T) {
	c, cl := bridgeCluster(t, "10.252.0.0/16", "1.36", "1.37")
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
			if out, _, err := c.run("", "exec", "client", "--", "wget", "-qO-", url); err == nil && strings.TrimSpace(out) != "" {
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

	// After a rollout the Service serves the new pods.
	c.must("set", "image", "deploy/web", "httpd=busybox:1.37")
	c.must("rollout", "status", "deploy/web", "--timeout", "120s")
	waitServed()
	c.must("delete", "-f", writeFile(t, "web2.yaml", servedDeployment))
}
