package controller

import (
	"context"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// waitKubernetesEndpoints watches default/kubernetes's Endpoints until cond holds.
func waitKubernetesEndpoints(t *testing.T, cl *client.Client, what string, cond func(*api.Endpoints) bool) {
	t.Helper()
	epKind, _ := api.LookupKind("endpoints")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, err := cl.Watch(ctx, epKind, "default", client.ListOptions{FieldSelector: "metadata.name=kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if ep, ok := ev.Object.(*api.Endpoints); ok && ev.Type != "DELETED" && cond(ep) {
			return
		}
	}
	t.Fatalf("default/kubernetes Endpoints never %s", what)
}

func TestKubernetesEndpoints(t *testing.T) {
	cl := newTestAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svcKind, _ := api.LookupKind("services")
	epKind, _ := api.LookupKind("endpoints")
	svc := svcKind.NewObject().(*api.Service)
	svc.Namespace, svc.Name = "default", "kubernetes"
	svc.Spec.Ports = []api.ServicePort{{Name: "https", Port: 443, Protocol: api.ProtocolTCP}}
	if _, err := cl.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	k := NewKubernetesEndpoints(testDeps(t, cl), "192.0.2.10", 6443)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { k.Run(runCtx); close(done) }()
	points := func(ep *api.Endpoints) bool {
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 1 && ep.Subsets[0].Addresses[0].IP == "192.0.2.10" &&
			len(ep.Subsets[0].Ports) == 1 && ep.Subsets[0].Ports[0].Port == 6443
	}
	waitKubernetesEndpoints(t, cl, "pointed at the API server", points)

	// Changed by hand: put back.
	if _, err := cl.Modify(ctx, epKind, "default", "kubernetes", func(o api.Object) error {
		o.(*api.Endpoints).Subsets = nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitKubernetesEndpoints(t, cl, "put back after a change", points)
	// Deleted: written again.
	if _, err := cl.Delete(ctx, epKind, "default", "kubernetes"); err != nil {
		t.Fatal(err)
	}
	waitKubernetesEndpoints(t, cl, "written again after a delete", points)

	stop()
	<-done
	// A loopback API server is out of the pods' reach: no address.
	lo := &KubernetesEndpoints{Client: cl, Host: "127.0.0.1", Port: 6443}
	if err := lo.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	o, err := cl.Get(ctx, epKind, "default", "kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	if ep := o.(*api.Endpoints); len(ep.Subsets) != 0 {
		t.Errorf("loopback API server: subsets %+v, want none", ep.Subsets)
	}
}
