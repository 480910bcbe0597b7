package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/server"
)

// TestEmptyListsReadLikeKubectl: an empty list prints kubectl's words on stderr and
// exits 0; an empty node list says why.
func TestEmptyListsReadLikeKubectl(t *testing.T) {
	c := startCluster(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "pods"}, "No resources found in default namespace.\n"},
		{[]string{"get", "deploy", "-n", "kube-system"}, "No resources found in kube-system namespace.\n"},
		{[]string{"get", "pods", "-A"}, "No resources found\n"},
		{[]string{"vm", "list"}, "No resources found in default namespace.\n"},
	} {
		out, errOut, err := c.run("", tc.args...)
		if err != nil || out != "" || errOut != tc.want {
			t.Errorf("cloudbox %s: err %v, stdout %q, stderr %q; want stderr %q", strings.Join(tc.args, " "), err, out, errOut, tc.want)
		}
	}

	m := startClusterWith(t, func(cfg *server.Config) { cfg.Role = server.RoleMaster })
	out, errOut, err := m.run("", "get", "nodes")
	if err != nil || out != "" || !strings.HasPrefix(errOut, "No resources found\nThe server started ") ||
		!strings.Contains(errOut, "cloudbox wait --for=condition=Ready node --all") {
		t.Fatalf("get nodes on a master without nodes: err %v, stdout %q, stderr %q", err, out, errOut)
	}
	if _, errOut, _ := m.run("", "get", "nodes", "-l", "zone=none"); errOut != "No resources found\n" {
		t.Errorf("get nodes -l on a master without nodes: %q; want no hint, a selector chose none", errOut)
	}
	if hint := noNodesHint(context.Background(), m.client(), time.Now().Add(time.Hour)); !strings.Contains(hint, "--role worker --join") {
		t.Errorf("an hour after the start, the hint is %q; want how to join a worker", hint)
	}
}

// TestWait: `wait` returns once the node is Ready, times out saying what it waited
// for, and refuses a --for it cannot read.
func TestWait(t *testing.T) {
	c := startCluster(t)
	if out := c.must("wait", "--for=condition=Ready", "node", "--all", "--timeout", "30s"); out != "node/node-1 condition met\n" {
		t.Fatalf("wait for the node: %q", out)
	}
	if out := c.must("wait", "--for", "jsonpath={.metadata.name}=node-1", "node/node-1"); out != "node/node-1 condition met\n" {
		t.Fatalf("wait for a field: %q", out)
	}
	if out := c.must("wait", "--for=delete", "pod/nothing-here", "--timeout", "5s"); out != "pod/nothing-here condition met\n" {
		t.Fatalf("wait for a missing pod's deletion: %q", out)
	}
	_, _, err := c.run("", "wait", "--for=condition=Ready=False", "node", "--all", "--timeout", "1s")
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s waiting for condition=Ready=False on node/node-1") {
		t.Fatalf("wait for a condition that never holds: %v", err)
	}
	_, _, err = c.run("", "wait", "--for=condition=Ready", "pods", "--all", "--timeout", "1s")
	if err == nil || !strings.Contains(err.Error(), "on pods: none found yet") {
		t.Fatalf("wait with nothing to wait for: %v", err)
	}
	// A server that never comes up is waited for until the timeout, which says so.
	none := &cluster{t: t, config: filepath.Join(t.TempDir(), "admin.config")}
	_, _, err = none.run("", "wait", "--for=condition=Ready", "node", "--all", "--timeout", "1s")
	if err == nil || !strings.Contains(err.Error(), "on nodes: the server never answered (last error: no client config found") {
		t.Fatalf("wait without a server: %v", err)
	}
	for _, bad := range [][]string{
		{"wait", "--for=ready", "node", "--all"},
		{"wait", "--for=jsonpath={.items[0]}", "node", "--all"},
		{"wait", "--for=condition=Ready", "node"},
	} {
		if _, _, err := c.run("", bad...); err == nil {
			t.Errorf("cloudbox %s: no error", strings.Join(bad, " "))
		}
	}
}
