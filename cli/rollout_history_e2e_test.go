package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/testimage"
)

const agentDaemonSet = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox:1.36
        command: ["sleep", "3600"]
`

// TestDaemonSetRollsBackWithRealContainers: set image rolls the node's daemon to a
// new revision, and rollout undo rolls it back to the first, which is renumbered.
func TestDaemonSetRollsBackWithRealContainers(t *testing.T) {
	c, cl := containerCluster(t, nil)
	v2 := filepath.Join(t.TempDir(), "v2.tar")
	if err := testimage.WriteBusyboxTarball(v2, "docker.io/library/busybox:1.37"); err != nil {
		t.Fatal(err)
	}
	c.must("image", "import", v2)
	c.must("apply", "-f", writeFile(t, "agent.yaml", agentDaemonSet))
	if out := c.must("rollout", "status", "ds/agent", "--timeout", "60s"); !strings.Contains(out, `daemon set "agent" successfully rolled out`) {
		t.Fatalf("rollout status:\n%s", out)
	}
	// daemon returns the node's running daemon pod, which must be the only one.
	daemon := func() *api.Pod {
		t.Helper()
		k, _ := api.LookupKind("pods")
		l, err := cl.ListAll(context.Background(), k, "default", client.ListOptions{LabelSelector: "app=agent"})
		if err != nil {
			t.Fatal(err)
		}
		var live []*api.Pod
		for _, o := range l.Items {
			if p := o.(*api.Pod); p.DeletionTimestamp == nil {
				live = append(live, p)
			}
		}
		if len(live) != 1 || !running(live[0]) {
			t.Fatalf("want one running daemon pod, have %d of %d", len(live), len(l.Items))
		}
		return live[0]
	}
	first := daemon()

	c.must("set", "image", "ds/agent", "c=busybox:1.37")
	c.must("rollout", "status", "ds/agent", "--timeout", "60s")
	if p := daemon(); p.Spec.Containers[0].Image != "busybox:1.37" || p.Name == first.Name {
		t.Fatalf("after set image: pod %s runs %s", p.Name, p.Spec.Containers[0].Image)
	}

	if out := c.must("rollout", "undo", "ds/agent"); !strings.Contains(out, "rolled back to revision 1") {
		t.Fatalf("undo: %s", out)
	}
	c.must("rollout", "status", "ds/agent", "--timeout", "60s")
	p := daemon()
	if p.Spec.Containers[0].Image != "busybox:1.36" || p.Labels[api.LabelControllerRevisionHash] != first.Labels[api.LabelControllerRevisionHash] {
		t.Fatalf("after undo: pod %s runs %s with hash %s (the first ran hash %s)", p.Name, p.Spec.Containers[0].Image,
			p.Labels[api.LabelControllerRevisionHash], first.Labels[api.LabelControllerRevisionHash])
	}
	if out := c.must("rollout", "history", "ds/agent"); !strings.Contains(out, "\n2 ") || !strings.Contains(out, "\n3 ") || strings.Contains(out, "\n1 ") {
		t.Fatalf("history after undo (revision 1 renumbered 3):\n%s", out)
	}
}
