package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func TestNodeIPAMGivesEachNodeItsOwnSubnet(t *testing.T) {
	cl := newTestAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodeKind, _ := api.LookupKind("nodes")
	// One node already has a subnet: it keeps it and nobody else gets it.
	for i, cidr := range []string{"10.244.0.0/24", "", "", ""} {
		n := nodeKind.NewObject().(*api.Node)
		n.Name = fmt.Sprintf("n%d", i)
		n.Spec.PodCIDR = cidr
		if _, err := cl.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewNodeIPAM(testDeps(t, cl), "10.244.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	go c.Run(ctx)

	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	events, err := cl.Watch(wctx, nodeKind, "", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cidrs := map[string]string{}
	for ev := range events {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if n, ok := ev.Object.(*api.Node); ok && ev.Type != "BOOKMARK" {
			cidrs[n.Name] = n.Spec.PodCIDR
		}
		done := len(cidrs) == 4
		for _, c := range cidrs {
			done = done && c != ""
		}
		if done {
			break
		}
	}
	if cidrs["n0"] != "10.244.0.0/24" {
		t.Errorf("n0's subnet changed to %q", cidrs["n0"])
	}
	seen := map[string]string{}
	for node, c := range cidrs {
		if c == "" {
			t.Fatalf("%s got no subnet: %v", node, cidrs)
		}
		if other, dup := seen[c]; dup {
			t.Fatalf("%s and %s share %s", node, other, c)
		}
		seen[c] = node
	}
}

func TestNodeIPAMRefusesABadCIDR(t *testing.T) {
	if _, err := NewNodeIPAM(Deps{}, "10.244.0.0/33"); err == nil {
		t.Fatal("a bad cluster CIDR was accepted")
	}
}
