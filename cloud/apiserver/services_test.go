package apiserver

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

const svcPath = "/api/v1/namespaces/default/services"

// serveStore runs an API server over st, as a server restart would make a new one.
func serveStore(t *testing.T, st store.Store, cfg Config) *httptest.Server {
	t.Helper()
	cfg.Store = st
	cfg.Tokens = &Tokens{Admin: testToken, NodeSecret: "node-secret"}
	cfg.TunnelWait = time.Second
	s := New(cfg)
	if err := s.EnsureKubernetesService(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	ts := httptest.NewTLSServer(s)
	t.Cleanup(func() { s.Shutdown(); ts.Close() })
	return ts
}

func newServiceStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	nsKind, _ := api.LookupKind("namespaces")
	ns := nsKind.NewObject().(*api.Namespace)
	ns.Name = "default"
	if _, err := st.Create(context.Background(), nsKind, ns); err != nil {
		t.Fatal(err)
	}
	return st
}

func svcJSON(name, typ, clusterIP string, ports ...map[string]any) []byte {
	spec := map[string]any{"selector": map[string]string{"app": name}}
	if typ != "" {
		spec["type"] = typ
	}
	if clusterIP != "" {
		spec["clusterIP"] = clusterIP
	}
	if len(ports) == 0 {
		ports = []map[string]any{{"port": 80}}
	}
	spec["ports"] = ports
	b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": name}, "spec": spec})
	return b
}

func createSvc(t *testing.T, ts *httptest.Server, body []byte) *api.Service {
	t.Helper()
	a := call(t, ts, testToken, "POST", svcPath, "application/json", body)
	if a.code != http.StatusCreated {
		t.Fatalf("create service: %d %s", a.code, a.body)
	}
	var s api.Service
	if err := json.Unmarshal(a.body, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func wantCause(t *testing.T, a answer, field, msg string) {
	t.Helper()
	if a.code != http.StatusUnprocessableEntity {
		t.Fatalf("code %d, want 422: %s", a.code, a.body)
	}
	st := a.status(t)
	if st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Field != field || st.Details.Causes[0].Message != msg {
		t.Fatalf("causes %+v, want %s: %s", st.Details, field, msg)
	}
}

func TestServiceClusterIPAllocation(t *testing.T) {
	st := newServiceStore(t)
	ts := serveStore(t, st, Config{})
	_, cidr, _ := net.ParseCIDR(DefaultServiceCIDR)

	kube := call(t, ts, testToken, "GET", svcPath+"/kubernetes", "", nil)
	var ks api.Service
	if err := json.Unmarshal(kube.body, &ks); err != nil || ks.Spec.ClusterIP != "10.96.0.1" || ks.Spec.Ports[0].Port != 443 {
		t.Fatalf("kubernetes Service: %d %s", kube.code, kube.body)
	}

	a := createSvc(t, ts, svcJSON("a", "", ""))
	b := createSvc(t, ts, svcJSON("b", "", ""))
	for _, s := range []*api.Service{a, b} {
		if ip := net.ParseIP(s.Spec.ClusterIP); ip == nil || !cidr.Contains(ip) || s.Spec.ClusterIP == "10.96.0.1" {
			t.Fatalf("%s got clusterIP %q", s.Name, s.Spec.ClusterIP)
		}
	}
	if a.Spec.ClusterIP == b.Spec.ClusterIP {
		t.Fatalf("both services got %s", a.Spec.ClusterIP)
	}

	c := createSvc(t, ts, svcJSON("c", "", "10.96.0.5"))
	if c.Spec.ClusterIP != "10.96.0.5" {
		t.Fatalf("requested IP not honoured: %q", c.Spec.ClusterIP)
	}
	wantCause(t, call(t, ts, testToken, "POST", svcPath, "application/json", svcJSON("d", "", "10.96.0.5")),
		"spec.clusterIP", `"10.96.0.5" is already allocated`)
	wantCause(t, call(t, ts, testToken, "POST", svcPath, "application/json", svcJSON("d", "", "10.1.0.5")),
		"spec.clusterIP", `"10.1.0.5" is not in the service CIDR 10.96.0.0/16`)
	wantCause(t, call(t, ts, testToken, "POST", svcPath, "application/json", svcJSON("d", "", "10.96.0.1")),
		"spec.clusterIP", `"10.96.0.1" is kept for the default/kubernetes Service`)
	// A create refused by the store gives back nothing it did not take.
	if a := call(t, ts, testToken, "POST", svcPath, "application/json", svcJSON("a", "", "")); a.code != http.StatusConflict {
		t.Fatalf("duplicate name: %d %s", a.code, a.body)
	}
	if got := call(t, ts, testToken, "POST", svcPath, "application/json", svcJSON("e", "", a.Spec.ClusterIP)); got.code != http.StatusUnprocessableEntity {
		t.Fatalf("a's IP must still be held after the refused duplicate: %d %s", got.code, got.body)
	}

	h := createSvc(t, ts, svcJSON("h", "", "None"))
	if h.Spec.ClusterIP != "None" {
		t.Fatalf("headless: %q", h.Spec.ClusterIP)
	}

	// An update without the clusterIP keeps it; one that changes it is refused.
	upd := call(t, ts, testToken, "PUT", svcPath+"/c", "application/json", svcJSON("c", "", "", map[string]any{"port": 8080}))
	var cu api.Service
	if err := json.Unmarshal(upd.body, &cu); upd.code != http.StatusOK || err != nil || cu.Spec.ClusterIP != "10.96.0.5" || cu.Spec.Ports[0].Port != 8080 {
		t.Fatalf("update: %d %s", upd.code, upd.body)
	}
	wantCause(t, call(t, ts, testToken, "PUT", svcPath+"/c", "application/json", svcJSON("c", "", "10.96.0.6")),
		"spec.clusterIP", `field is immutable (was "10.96.0.5")`)

	// Delete releases: another Service may take the address.
	if a := call(t, ts, testToken, "DELETE", svcPath+"/c", "", nil); a.code != http.StatusOK {
		t.Fatalf("delete: %d %s", a.code, a.body)
	}
	if d := createSvc(t, ts, svcJSON("d", "", "10.96.0.5")); d.Spec.ClusterIP != "10.96.0.5" {
		t.Fatalf("freed IP: %q", d.Spec.ClusterIP)
	}

	// A restart restores: stored addresses stay taken, none is handed out twice.
	ts2 := serveStore(t, st, Config{})
	wantCause(t, call(t, ts2, testToken, "POST", svcPath, "application/json", svcJSON("x", "", a.Spec.ClusterIP)),
		"spec.clusterIP", `"`+a.Spec.ClusterIP+`" is already allocated`)
	taken := map[string]bool{"10.96.0.1": true, a.Spec.ClusterIP: true, b.Spec.ClusterIP: true, "10.96.0.5": true}
	for _, name := range []string{"y1", "y2", "y3", "y4"} {
		y := createSvc(t, ts2, svcJSON(name, "", ""))
		if taken[y.Spec.ClusterIP] {
			t.Fatalf("after restart %s got %s, already taken", name, y.Spec.ClusterIP)
		}
		taken[y.Spec.ClusterIP] = true
	}
	if a := call(t, ts2, testToken, "POST", svcPath, "application/json", svcJSON("a", "", "")); a.code != http.StatusConflict {
		t.Fatalf("duplicate after restart: %d %s", a.code, a.body)
	}
	if l := listServices(t, ts2); len(l) != 9 { // kubernetes, a, b, h, d, y1-y4
		t.Fatalf("services after restart: %d", len(l))
	}
}

func listServices(t *testing.T, ts *httptest.Server) []api.Service {
	t.Helper()
	a := call(t, ts, testToken, "GET", svcPath, "", nil)
	var l struct{ Items []api.Service }
	if err := json.Unmarshal(a.body, &l); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func TestServiceNodePorts(t *testing.T) {
	st := newServiceStore(t)
	ts := serveStore(t, st, Config{NodePortRange: "30000-30010"})
	s := createSvc(t, ts, svcJSON("np", "NodePort", "",
		map[string]any{"name": "http", "port": 80}, map[string]any{"name": "fixed", "port": 81, "nodePort": 30005}))
	if p := s.Spec.Ports[0].NodePort; p < 30000 || p > 30010 || p == 30005 {
		t.Fatalf("allocated node port %d", p)
	}
	if p := s.Spec.Ports[1].NodePort; p != 30005 {
		t.Fatalf("requested node port %d", p)
	}
	wantCause(t, call(t, ts, testToken, "POST", svcPath, "application/json", svcJSON("np2", "NodePort", "", map[string]any{"port": 80, "nodePort": 30005})),
		"spec.ports[0].nodePort", "30005 is already allocated")
	wantCause(t, call(t, ts, testToken, "POST", svcPath, "application/json", svcJSON("np2", "NodePort", "", map[string]any{"port": 80, "nodePort": 31000})),
		"spec.ports[0].nodePort", "31000 is outside the node port range 30000-30010")
	// The failed creates took no cluster IP or port with them.
	np2 := createSvc(t, ts, svcJSON("np2", "NodePort", "", map[string]any{"port": 80}))
	first := s.Spec.Ports[0].NodePort

	// Dropping a port on update frees its node port; re-applying keeps the others.
	upd := call(t, ts, testToken, "PUT", svcPath+"/np", "application/json", svcJSON("np", "NodePort", "", map[string]any{"name": "http", "port": 80}))
	var su api.Service
	if err := json.Unmarshal(upd.body, &su); upd.code != http.StatusOK || err != nil || len(su.Spec.Ports) != 1 || su.Spec.Ports[0].NodePort != first {
		t.Fatalf("update: %d %s", upd.code, upd.body)
	}
	if got := createSvc(t, ts, svcJSON("np3", "NodePort", "", map[string]any{"port": 80, "nodePort": 30005})); got.Spec.Ports[0].NodePort != 30005 {
		t.Fatal("dropped port's node port was not freed")
	}
	// Changing to ClusterIP frees every node port.
	upd = call(t, ts, testToken, "PUT", svcPath+"/np", "application/json", svcJSON("np", "ClusterIP", "", map[string]any{"name": "http", "port": 80}))
	if upd.code != http.StatusOK {
		t.Fatalf("type change: %d %s", upd.code, upd.body)
	}
	if got := createSvc(t, ts, svcJSON("np4", "NodePort", "", map[string]any{"port": 80, "nodePort": first})); got.Spec.Ports[0].NodePort != first {
		t.Fatal("type change did not free the node port")
	}
	// Back to NodePort gets a new one; delete frees it.
	upd = call(t, ts, testToken, "PUT", svcPath+"/np", "application/json", svcJSON("np", "NodePort", "", map[string]any{"name": "http", "port": 80}))
	if err := json.Unmarshal(upd.body, &su); upd.code != http.StatusOK || err != nil || su.Spec.Ports[0].NodePort == 0 {
		t.Fatalf("to NodePort: %d %s", upd.code, upd.body)
	}
	back := su.Spec.Ports[0].NodePort

	// Restart: the held ports stay held.
	ts2 := serveStore(t, st, Config{NodePortRange: "30000-30010"})
	for _, p := range []int32{back, np2.Spec.Ports[0].NodePort, 30005, first} {
		wantCause(t, call(t, ts2, testToken, "POST", svcPath, "application/json", svcJSON("z", "NodePort", "", map[string]any{"port": 80, "nodePort": p})),
			"spec.ports[0].nodePort", itoa(p)+" is already allocated")
	}
	if a := call(t, ts2, testToken, "DELETE", svcPath+"/np", "", nil); a.code != http.StatusOK {
		t.Fatalf("delete: %d", a.code)
	}
	if got := createSvc(t, ts2, svcJSON("z", "NodePort", "", map[string]any{"port": 80, "nodePort": back})); got.Spec.Ports[0].NodePort != back {
		t.Fatal("delete did not free the node port")
	}
}

func itoa(p int32) string { b, _ := json.Marshal(p); return string(b) }

func TestServiceBadConfig(t *testing.T) {
	st := newServiceStore(t)
	s := New(Config{Store: st, Tokens: &Tokens{Admin: testToken}, ServiceCIDR: "10.96.0.0/31"})
	if err := s.EnsureKubernetesService(context.Background()); err == nil {
		t.Fatal("a /31 service CIDR was accepted")
	}
}
