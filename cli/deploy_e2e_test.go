package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/testimage"
)

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox:1.36
        command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
        readinessProbe:
          exec: {command: ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]}
          periodSeconds: 1
`

// podImages returns the images of the web deployment's running, ready pods.
func webPods(t *testing.T, cl *client.Client) []*api.Pod {
	t.Helper()
	k, _ := api.LookupKind("pods")
	l, err := cl.ListAll(context.Background(), k, "default", client.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.Pod
	for _, o := range l.Items {
		if p := o.(*api.Pod); p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func TestDeploymentRollsOutAndBackWithRealContainers(t *testing.T) {
	c, cl := containerCluster(t, nil)
	v2 := filepath.Join(t.TempDir(), "v2.tar")
	if err := testimage.WriteBusyboxTarball(v2, "docker.io/library/busybox:1.37"); err != nil {
		t.Fatal(err)
	}
	c.must("image", "import", v2)

	c.must("apply", "-f", writeFile(t, "web.yaml", webDeployment))
	if out := c.must("rollout", "status", "deploy/web", "--timeout", "90s"); !strings.Contains(out, `deployment "web" successfully rolled out`) {
		t.Fatalf("rollout status:\n%s", out)
	}
	if out := c.must("get", "deploy", "web"); !strings.Contains(out, "3/3") {
		t.Fatalf("get deploy:\n%s", out)
	}

	c.must("set", "image", "deploy/web", "httpd=busybox:1.37")
	c.must("rollout", "status", "deploy/web", "--timeout", "90s")
	for _, p := range webPods(t, cl) {
		if p.Spec.Containers[0].Image != "busybox:1.37" {
			t.Fatalf("pod %s still runs %s after the rollout", p.Name, p.Spec.Containers[0].Image)
		}
	}
	if out := c.must("rollout", "history", "deploy/web"); !strings.Contains(out, "1 ") || !strings.Contains(out, "2 ") {
		t.Fatalf("rollout history:\n%s", out)
	}

	c.must("rollout", "undo", "deploy/web")
	c.must("rollout", "status", "deploy/web", "--timeout", "90s")
	for _, p := range webPods(t, cl) {
		if p.Spec.Containers[0].Image != "busybox:1.36" {
			t.Fatalf("pod %s runs %s after undo", p.Name, p.Spec.Containers[0].Image)
		}
	}

	// Deleting a pod brings the count back.
	victim := webPods(t, cl)[0].Name
	c.must("delete", "pod", victim, "--wait=false")
	deadline := time.Now().Add(60 * time.Second)
	for {
		pods := webPods(t, cl)
		replaced := len(pods) == 3
		for _, p := range pods {
			replaced = replaced && p.Name != victim && running(p)
		}
		if replaced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted pod was not replaced: %d pods", len(pods))
		}
		time.Sleep(100 * time.Millisecond) // waiting on several pods' states at once
	}
	c.must("scale", "deploy/web", "--replicas", "1")
	c.must("rollout", "status", "deploy/web", "--timeout", "60s")
	// In the foreground the Deployment goes last: once delete has waited for it,
	// its ReplicaSets and pods are gone, not only marked.
	c.must("delete", "deploy", "web", "--cascade=foreground")
	k, _ := api.LookupKind("pods")
	l, err := cl.ListAll(context.Background(), k, "default", client.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 {
		t.Fatalf("%d web pods left after a foreground delete of their deployment", len(l.Items))
	}
	if out := c.must("get", "rs"); strings.Contains(out, "web-") {
		t.Fatalf("replica sets left after a foreground delete:\n%s", out)
	}
}
