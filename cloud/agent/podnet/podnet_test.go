package podnet

import (
	"context"
	"net"
	"os/exec"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/internal/testenv"
)

// startIn starts a Network in a namespace of the test's own.
func startIn(t *testing.T, ns *testenv.NetNS, n *Network) {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
	if err := ns.Do(func() error { return n.Start("10.66.1.0/24") }); err != nil {
		t.Fatal(err)
	}
}

// A restarted agent removes pods deleted while it was down before the node's
// subnet is known: their addresses must still go back to the pool, and the
// running pods' addresses must be reported meanwhile.
func TestRestartKeepsAndFreesAddresses(t *testing.T) {
	dir := t.TempDir()
	ns := testenv.NewNetNS(t)
	cfg := Config{ClusterCIDR: "10.66.0.0/16", StateDir: dir}
	n := New(cfg)
	startIn(t, ns, n)
	ips := map[string]net.IP{}
	for _, uid := range []string{"kept", "deleted-while-down", "unknown-to-api", "deleting"} {
		ip, err := n.pool.Allocate(uid)
		if err != nil {
			t.Fatal(err)
		}
		ips[uid] = ip
	}

	// The agent restarts.
	n = New(cfg)
	if got := n.PodIP("kept"); got != ips["kept"].String() {
		t.Errorf("PodIP before Start = %q, want %s from the pool's file", got, ips["kept"])
	}
	ctx := context.Background()
	if err := n.Teardown(ctx, "deleted-while-down"); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, "deleting"); err != nil {
		t.Fatal(err)
	}
	startIn(t, ns, n)
	if _, ok := n.pool.Lookup("deleted-while-down"); ok {
		t.Error("a pod torn down before Start kept its address")
	}
	// The API still lists "deleting" (the agent deletes it after its teardown)
	// and "kept"; it never heard of "unknown-to-api".
	known := map[string]net.IP{"kept": ips["kept"], "deleting": ips["deleting"]}
	if err := n.Reconcile(known); err != nil {
		t.Fatal(err)
	}
	got := n.pool.Allocations()
	if len(got) != 1 || !got["kept"].Equal(ips["kept"]) {
		t.Errorf("pool after Reconcile = %v, want only kept=%s", got, ips["kept"])
	}
}

func TestIsolated(t *testing.T) {
	for _, tc := range []struct {
		name, label string
		byDefault   bool
		want        bool
	}{
		{"default", "", false, false},
		{"default", "true", false, true},
		{"default", "", true, true},
		{"default", "false", true, false},
		{"kube-system", "", true, false},
		{"kube-system", "true", false, true},
	} {
		ns := &api.Namespace{}
		ns.Name = tc.name
		if tc.label != "" {
			ns.Labels = map[string]string{LabelIsolation: tc.label}
		}
		if got := isolated(ns, tc.byDefault); got != tc.want {
			t.Errorf("%s labelled %q, default %v: isolated = %v", tc.name, tc.label, tc.byDefault, got)
		}
	}
}
