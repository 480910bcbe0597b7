package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/server"
)

const twoPodsManifest = `apiVersion: v1
kind: Pod
metadata: {name: first}
spec:
  containers: [{name: main, image: busybox:1.36}]
---
apiVersion: v1
kind: Pod
metadata: {name: second}
spec:
  containers: [{name: main, image: busybox:1.36}]
`

// TestMaxPods: --max-pods is the node's pods capacity, and the scheduler places no
// more pods than that on it.
func TestMaxPods(t *testing.T) {
	c := startClusterWith(t, func(cfg *server.Config) { cfg.MaxPods = 1 })
	if _, _, err := c.run("", "server", "--max-pods", "0", "--data-dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "--max-pods 0: a node must be able to run at least one pod") {
		t.Errorf("server --max-pods 0: %v", err)
	}
	var node api.Node
	if err := json.Unmarshal([]byte(c.must("get", "node", "node-1", "-o", "json")), &node); err != nil {
		t.Fatal(err)
	}
	if got := node.Status.Capacity[api.ResourcePods]; got.String() != "1" {
		t.Fatalf("the node's pods capacity is %q, want 1", got.String())
	}
	c.must("apply", "-f", writeFile(t, "pods.yaml", twoPodsManifest))
	c.must("wait", "--for=jsonpath={.spec.nodeName}=node-1", "pod/first", "--timeout", "30s")
	c.must("wait", "--for=condition=PodScheduled=False", "pod/second", "--timeout", "30s")
	var pod api.Pod
	if err := json.Unmarshal([]byte(c.must("get", "pod", "second", "-o", "json")), &pod); err != nil {
		t.Fatal(err)
	}
	var why string
	for _, cond := range pod.Status.Conditions {
		if cond.Type == api.PodScheduled {
			why = cond.Message
		}
	}
	if pod.Spec.NodeName != "" || !strings.Contains(why, "too many pods") {
		t.Fatalf("the second pod on a node for one: node %q, conditions %+v", pod.Spec.NodeName, pod.Status.Conditions)
	}
}
