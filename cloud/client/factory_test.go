package client_test

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/apiserver"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/store"
)

// newTestAPI runs a real API server over a real store for the test and returns an
// admin client; the namespaces default and other exist.
func newTestAPI(t *testing.T) *client.Client {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"default", "other"} {
		ns := &api.Namespace{}
		ns.Name = name
		if _, err := st.Create(context.Background(), api.KindOfType[*api.Namespace](), ns); err != nil {
			t.Fatal(err)
		}
	}
	srv := apiserver.New(apiserver.Config{Store: st, Tokens: &apiserver.Tokens{Admin: "admin"}})
	srv.SetReady(true)
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(func() { srv.Shutdown(); ts.Close(); st.Close() })
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	cl, err := client.New(client.Config{Server: ts.URL, CACert: ca, Token: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func createPod(t *testing.T, cl *client.Client, ns, name, node string, owner *api.OwnerReference) *api.Pod {
	t.Helper()
	p := &api.Pod{}
	p.Namespace, p.Name = ns, name
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox"}}
	p.Spec.NodeName = node
	if owner != nil {
		p.OwnerReferences = []api.OwnerReference{*owner}
	}
	api.Default(p)
	out, err := cl.Create(context.Background(), p)
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
	return out.(*api.Pod)
}

// waitFor polls nothing: it waits on the informer's own handler calls until cond holds.
func waitFor(t *testing.T, changed <-chan struct{}, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for !cond() {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func podNames(pods []*api.Pod) []string {
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	sort.Strings(out)
	return out
}

func TestFactorySharesOneInformerPerKind(t *testing.T) {
	cl := newTestAPI(t)
	f := client.NewFactory(cl, client.FactoryOptions{})
	pods := client.For[*api.Pod](f)
	if again := client.For[*api.Pod](f); again.Informer != pods.Informer {
		t.Fatal("a second request for pods made a second informer")
	}
	if untyped := f.Informer(api.MustKind("pods")); untyped != pods.Informer {
		t.Fatal("the untyped and the typed pod informers differ")
	}
	client.For[*api.Node](f)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); f.Wait() }()
	f.Start(ctx)
	if !f.WaitForSync(ctx) {
		t.Fatal("no sync")
	}
	if got := f.Resources(); len(got) != 2 || got[0] != "nodes" || got[1] != "pods" {
		t.Fatalf("resources = %v, want [nodes pods]", got)
	}
	// A watch opens after the first list; wait for both to be open.
	deadline := time.Now().Add(10 * time.Second)
	for f.Streams() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("streams = %d, want 2", f.Streams())
		}
		time.Sleep(10 * time.Millisecond) // Streams has no change notification: a poll
	}
	// An informer asked for after Start runs at once.
	cms := client.For[*api.ConfigMap](f)
	if !client.WaitForSync(ctx, cms.Informer) {
		t.Fatal("late informer never synced")
	}
}

func TestInformerIndexesFollowChanges(t *testing.T) {
	cl := newTestAPI(t)
	f := client.NewFactory(cl, client.FactoryOptions{})
	pods := client.For[*api.Pod](f)
	changed := make(chan struct{}, 100)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	pods.AddHandler(client.TypedHandler[*api.Pod]{
		OnAdd:    func(*api.Pod) { notify() },
		OnUpdate: func(_, _ *api.Pod) { notify() },
		OnDelete: func(*api.Pod) { notify() },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); f.Wait() }()
	f.Start(ctx)
	f.WaitForSync(ctx)

	ctl := true
	owner := &api.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "uid-rs", Controller: &ctl}
	createPod(t, cl, "default", "a", "node-1", owner)
	createPod(t, cl, "default", "b", "", nil)
	createPod(t, cl, "other", "c", "node-1", nil)
	waitFor(t, changed, "three pods", func() bool { return len(pods.List()) == 3 })

	if got := podNames(pods.InNamespace("default")); len(got) != 2 || got[0] != "default/a" || got[1] != "default/b" {
		t.Errorf("namespace default = %v", got)
	}
	if got := podNames(pods.OnNode("node-1")); len(got) != 2 || got[0] != "default/a" || got[1] != "other/c" {
		t.Errorf("node-1 = %v", got)
	}
	if got := podNames(pods.ControlledBy("uid-rs")); len(got) != 1 || got[0] != "default/a" {
		t.Errorf("controlled by uid-rs = %v", got)
	}
	if got := podNames(pods.ByIndex(client.IndexOwner, "uid-rs")); len(got) != 1 {
		t.Errorf("owned by uid-rs = %v", got)
	}

	// An update moves the object in the indexes; a delete takes it out.
	b, _ := pods.GetByName("default", "b")
	if err := cl.Bind(context.Background(), b.Namespace, b.Name, "node-2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, "b bound to node-2", func() bool { return len(pods.OnNode("node-2")) == 1 })
	if _, err := cl.DeleteWithGrace(context.Background(), api.MustKind("pods"), "other", "c", new(int64)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, "c deleted", func() bool { return len(pods.List()) == 2 })
	if got := podNames(pods.OnNode("node-1")); len(got) != 1 || got[0] != "default/a" {
		t.Errorf("node-1 after delete = %v", got)
	}
	if got := pods.InNamespace("other"); len(got) != 0 {
		t.Errorf("namespace other after delete = %v", podNames(got))
	}

	// A handler added now hears of every cached pod first.
	var replayed []*api.Pod
	pods.AddHandler(client.TypedHandler[*api.Pod]{OnAdd: func(p *api.Pod) { replayed = append(replayed, p) }})
	if got := podNames(replayed); len(got) != 2 || got[0] != "default/a" || got[1] != "default/b" {
		t.Errorf("late handler heard %v, want default/a and default/b", got)
	}
}

func TestFactoryScopeNarrowsAKind(t *testing.T) {
	cl := newTestAPI(t)
	f := client.NewFactory(cl, client.FactoryOptions{Scopes: map[string]client.ListOptions{
		"pods": {FieldSelector: "spec.nodeName=node-1"}}})
	createPod(t, cl, "default", "mine", "node-1", nil)
	createPod(t, cl, "default", "theirs", "node-2", nil)
	pods := client.For[*api.Pod](f)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); f.Wait() }()
	f.Start(ctx)
	f.WaitForSync(ctx)
	if got := podNames(pods.List()); len(got) != 1 || got[0] != "default/mine" {
		t.Fatalf("scoped pods = %v, want only default/mine", got)
	}
}
