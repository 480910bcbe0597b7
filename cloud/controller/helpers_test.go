package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 15 * time.Second

// startController runs run on a goroutine until the test ends.
func startController(t *testing.T, run func(ctx context.Context)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// waitList lists kind in ns whenever the watch reports a change, until cond holds
// for the list; it fails the test after waitTimeout. It returns the last list.
func waitList(t *testing.T, cl *client.Client, resource, ns string, what string, cond func([]api.Object) bool) []api.Object {
	t.Helper()
	k := kind(resource)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	events, err := cl.Watch(ctx, k, ns, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var items []api.Object
	for {
		l, err := cl.ListAll(ctx, k, ns, client.ListOptions{})
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		items = l.Items
		if cond(items) {
			return items
		}
		select {
		case ev, ok := <-events:
			if !ok || ev.Err != nil {
				t.Fatalf("waiting for %s: watch ended (%v); last list: %s", what, ev.Err, names(items))
			}
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; last list: %s", what, names(items))
		}
	}
}

func names(objs []api.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetObjectMeta().Name)
	}
	return out
}

func kind(resource string) *api.KindInfo {
	k, ok := api.LookupKind(resource)
	if !ok {
		panic("no kind " + resource)
	}
	return k
}

func mustCreate(t *testing.T, cl *client.Client, o api.Object) api.Object {
	t.Helper()
	api.Default(o)
	out, err := cl.Create(context.Background(), o)
	if err != nil {
		t.Fatalf("creating %s: %v", o.GetObjectMeta().Name, err)
	}
	return out
}

func newPod(ns, name string, owners ...api.Object) *api.Pod {
	p := &api.Pod{}
	p.Namespace, p.Name = ns, name
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox"}}
	for _, o := range owners {
		p.OwnerReferences = append(p.OwnerReferences, ownerRef(o))
	}
	return p
}

func ownerRef(o api.Object) api.OwnerReference {
	k, _ := api.KindOf(o)
	m := o.GetObjectMeta()
	return api.OwnerReference{APIVersion: k.APIVersion(), Kind: k.Kind, Name: m.Name, UID: m.UID}
}

func newConfigMap(ns, name string) *api.ConfigMap {
	cm := &api.ConfigMap{}
	cm.Namespace, cm.Name = ns, name
	return cm
}

// setPodReady plays the agent: it marks the pod Running and Ready (or not).
func setPodReady(t *testing.T, cl *client.Client, p *api.Pod, ready bool) {
	t.Helper()
	for {
		cur, err := cl.Get(context.Background(), kind("pods"), p.Namespace, p.Name)
		if err != nil {
			t.Fatal(err)
		}
		pod := cur.(*api.Pod)
		status := api.ConditionFalse
		if ready {
			status = api.ConditionTrue
		}
		pod.Status.Phase = api.PodRunning
		pod.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: status})
		_, err = cl.UpdateStatus(context.Background(), pod)
		if client.IsConflict(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
}

// change updates an object through fn, reading it again on a conflict (controllers
// write the status meanwhile).
func change(t *testing.T, cl *client.Client, resource, ns, name string, fn func(api.Object)) {
	t.Helper()
	err := updateLive(context.Background(), cl, kind(resource), ns, name, "", func(o api.Object) bool {
		fn(o)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}
