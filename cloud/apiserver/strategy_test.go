package apiserver

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// TestStrategiesAreWellFormed checks what the registry cannot check as each strategy
// registers: a subresource is named once and never "status" (every kind has it), and
// one that refuses unlisted methods lists some.
func TestStrategiesAreWellFormed(t *testing.T) {
	for resource, st := range strategies {
		seen := map[string]bool{}
		for _, sub := range st.subresources() {
			if seen[sub.Name] {
				t.Errorf("%s: subresource %q declared twice", resource, sub.Name)
			}
			seen[sub.Name] = true
			if sub.OnlyMethods && len(sub.Methods) == 0 {
				t.Errorf("%s/%s refuses every method", resource, sub.Name)
			}
		}
	}
}

// TestSubresourceRouting goes through the routes the strategies declare: a
// subresource of another kind is refused naming its kind, an unknown one naming the
// kind asked, and a streamed one refuses the methods it does not serve.
func TestSubresourceRouting(t *testing.T) {
	ts, _ := newTestServer(t)
	if a := call(t, ts, testToken, "POST", "/api/v1/nodes", "application/json", []byte(`{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}`)); a.code != http.StatusCreated {
		t.Fatalf("creating the node: %d %s", a.code, a.body)
	}
	call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("p", nil))
	for _, tc := range []struct {
		method, path string
		code         int
		message      string
	}{
		{"GET", "/api/v1/nodes/n1/binding", http.StatusNotFound, "binding is a subresource of pods only"},
		{"GET", "/api/v1/namespaces/default/services/x/exec", http.StatusNotFound, "exec is a subresource of pods only"},
		{"GET", podsPath + "/p/tunnel", http.StatusNotFound, "tunnel is a subresource of nodes only"},
		{"GET", podsPath + "/p/scale", http.StatusNotFound, "unknown subresource scale of pods"},
		{"PUT", podsPath + "/p/log", http.StatusMethodNotAllowed, "PUT is not allowed on log"},
		{"DELETE", podsPath + "/p/exec", http.StatusMethodNotAllowed, "DELETE is not allowed on exec"},
		{"POST", "/api/v1/nodes/n1/tunnel", http.StatusMethodNotAllowed, "POST is not allowed on tunnel"},
		{"PATCH", "/api/v1/nodes/n1/images", http.StatusMethodNotAllowed, "PATCH is not allowed on images"},
		{"GET", podsPath + "/p/log", http.StatusBadRequest, "pod p is not scheduled to a node yet"},
		{"POST", podsPath + "/p/status", http.StatusMethodNotAllowed, "POST creates in a collection"},
	} {
		a := call(t, ts, testToken, tc.method, tc.path, "application/json", []byte(`{}`))
		if a.code != tc.code || !strings.Contains(a.status(t).Message, tc.message) {
			t.Errorf("%s %s: %d %s, want %d %q", tc.method, tc.path, a.code, a.body, tc.code, tc.message)
		}
	}
	// A subresource that leaves other methods to the generic handlers: GET on
	// binding reads the pod.
	if a := call(t, ts, testToken, "GET", podsPath+"/p/binding", "", nil); a.code != http.StatusOK || !strings.Contains(string(a.body), `"kind":"Pod"`) {
		t.Errorf("GET binding: %d %s", a.code, a.body)
	}
}

// TestDiscoveryListsTheStrategiesSubresources checks that discovery advertises the
// subresources with verbs, in their order, and not those for cloudbox's own use.
func TestDiscoveryListsTheStrategiesSubresources(t *testing.T) {
	ts, _ := newTestServer(t)
	var list struct {
		Resources []struct {
			Name  string   `json:"name"`
			Verbs []string `json:"verbs"`
		} `json:"resources"`
	}
	a := call(t, ts, testToken, "GET", "/api/v1", "", nil)
	if err := json.Unmarshal(a.body, &list); err != nil {
		t.Fatalf("/api/v1: %v: %s", err, a.body)
	}
	var pods, nodes []string
	verbs := map[string][]string{}
	for _, r := range list.Resources {
		verbs[r.Name] = r.Verbs
		if sub, ok := strings.CutPrefix(r.Name, "pods/"); ok {
			pods = append(pods, sub)
		}
		if sub, ok := strings.CutPrefix(r.Name, "nodes/"); ok {
			nodes = append(nodes, sub)
		}
	}
	if want := []string{"status", "binding", "log", "exec"}; !slices.Equal(pods, want) {
		t.Errorf("pods' subresources %v, want %v", pods, want)
	}
	if want := []string{"status"}; !slices.Equal(nodes, want) {
		t.Errorf("nodes' subresources %v, want %v", nodes, want)
	}
	if want := []string{"create", "get"}; !slices.Equal(verbs["pods/exec"], want) {
		t.Errorf("pods/exec verbs %v, want %v", verbs["pods/exec"], want)
	}
}

// TestNamespaceDeletionTerminates checks the namespace's delete: it goes Terminating
// with the finalizer "kubernetes" only, whatever the propagation policy, and refuses
// new objects from then on.
func TestNamespaceDeletionTerminates(t *testing.T) {
	ts, _ := newTestServer(t)
	a := call(t, ts, testToken, "DELETE", "/api/v1/namespaces/other?propagationPolicy=Orphan", "", nil)
	var ns api.Namespace
	if err := json.Unmarshal(a.body, &ns); err != nil || a.code != http.StatusOK {
		t.Fatalf("delete: %d %s", a.code, a.body)
	}
	if ns.Status.Phase != api.NamespaceTerminating || ns.DeletionTimestamp == nil || !slices.Equal(ns.Finalizers, []string{api.FinalizerKubernetes}) {
		t.Fatalf("deleted namespace: phase %q deletionTimestamp %v finalizers %v", ns.Status.Phase, ns.DeletionTimestamp, ns.Finalizers)
	}
	a = call(t, ts, testToken, "POST", "/api/v1/namespaces/other/pods", "application/json", podJSON("late", nil))
	if a.code != http.StatusForbidden || !strings.Contains(a.status(t).Message, `namespace "other" is being deleted`) {
		t.Fatalf("create in a terminating namespace: %d %s", a.code, a.body)
	}
}
