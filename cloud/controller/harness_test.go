package controller

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/apiserver"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/store"
)

// newTestAPI runs a real API server with a real store on loopback for the length of
// a test and returns an admin client. The default namespace exists.
func newTestAPI(t testing.TB) *client.Client {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nsKind, _ := api.LookupKind("namespaces")
	ns := nsKind.NewObject().(*api.Namespace)
	ns.Name = "default"
	if _, err := st.Create(context.Background(), nsKind, ns); err != nil {
		t.Fatal(err)
	}
	srv := apiserver.New(apiserver.Config{Store: st, Tokens: &apiserver.Tokens{Admin: "admin"}})
	srv.SetReady(true)
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(func() {
		srv.Shutdown()
		ts.Close()
		st.Close()
	})
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	cl, err := client.New(client.Config{Server: ts.URL, CACert: ca, Token: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// testDeps returns controller Deps over cl with a shared informer factory that runs
// until the test ends.
func testDeps(t testing.TB, cl *client.Client) Deps {
	t.Helper()
	f := client.NewFactory(cl, client.FactoryOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx)
	t.Cleanup(func() { cancel(); f.Wait() })
	return Deps{Client: cl, Factory: f}
}

func TestHarnessServes(t *testing.T) {
	cl := newTestAPI(t)
	nsKind, _ := api.LookupKind("namespaces")
	if _, err := cl.Get(context.Background(), nsKind, "", "default"); err != nil {
		t.Fatal(err)
	}
}
