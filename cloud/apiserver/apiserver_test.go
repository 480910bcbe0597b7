package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

const testToken = "admin-secret"

// newTestServer runs the API over TLS on loopback with a real store in a temp dir.
func newTestServer(t *testing.T) (*httptest.Server, store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nsKind, _ := api.LookupKind("namespaces")
	for _, name := range []string{"default", "other"} {
		ns := nsKind.NewObject().(*api.Namespace)
		ns.Name = name
		if _, err := st.Create(context.Background(), nsKind, ns); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Config{Store: st, Tokens: &Tokens{Admin: testToken, NodeSecret: "node-secret"}, MaxBodyBytes: 64 << 10, TunnelWait: time.Second})
	s.SetReady(true)
	ts := httptest.NewTLSServer(s)
	t.Cleanup(func() {
		s.Shutdown()
		ts.Close()
		st.Close()
	})
	return ts, st
}

type answer struct {
	code   int
	body   []byte
	header http.Header
}

func (a answer) status(t *testing.T) api.Status {
	t.Helper()
	var s api.Status
	if err := json.Unmarshal(a.body, &s); err != nil {
		t.Fatalf("answer is not a Status: %v: %s", err, a.body)
	}
	return s
}

func call(t *testing.T, ts *httptest.Server, token, method, path, contentType string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, b, resp.Header}
}

func podJSON(name string, labels map[string]string) []byte {
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "labels": labels},
		"spec": map[string]any{"containers": []any{map[string]any{
			"name": "c", "image": "busybox:1.36",
			"resources": map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "64Mi"}},
		}}},
	})
	return b
}

const podsPath = "/api/v1/namespaces/default/pods"

func TestUnauthorized(t *testing.T) {
	ts, _ := newTestServer(t)
	for _, tok := range []string{"", "wrong"} {
		a := call(t, ts, tok, "GET", podsPath, "", nil)
		if a.code != http.StatusUnauthorized {
			t.Fatalf("token %q: code %d, want 401", tok, a.code)
		}
		if s := a.status(t); s.Reason != "Unauthorized" {
			t.Fatalf("reason %q", s.Reason)
		}
	}
	if a := call(t, ts, "", "GET", "/healthz", "", nil); a.code != http.StatusOK {
		t.Fatalf("/healthz without a token: %d", a.code)
	}
}

func TestNodeTokenMayNotWriteNamespaces(t *testing.T) {
	ts, _ := newTestServer(t)
	body := []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}`)
	if a := call(t, ts, "node-secret", "POST", "/api/v1/namespaces", "application/json", body); a.code != http.StatusForbidden {
		t.Fatalf("node creating a namespace: %d %s", a.code, a.body)
	}
	if a := call(t, ts, "node-secret", "GET", podsPath, "", nil); a.code != http.StatusOK {
		t.Fatalf("node listing pods: %d", a.code)
	}
}

func TestCreateGetConflictNotFound(t *testing.T) {
	ts, _ := newTestServer(t)
	a := call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("web", nil))
	if a.code != http.StatusCreated {
		t.Fatalf("create: %d %s", a.code, a.body)
	}
	var created api.Pod
	if err := json.Unmarshal(a.body, &created); err != nil {
		t.Fatal(err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.CreationTimestamp == nil {
		t.Fatalf("server-set metadata missing: %+v", created.ObjectMeta)
	}
	if created.Spec.RestartPolicy != api.RestartAlways || created.Status.Phase != api.PodPending {
		t.Fatalf("defaults not applied: restartPolicy %q phase %q", created.Spec.RestartPolicy, created.Status.Phase)
	}

	a = call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("web", nil))
	if a.code != http.StatusConflict || a.status(t).Reason != "AlreadyExists" {
		t.Fatalf("duplicate create: %d %s", a.code, a.body)
	}

	// An update carrying a stale resourceVersion is refused.
	stale := created
	stale.ResourceVersion = "1"
	stale.Labels = map[string]string{"x": "y"}
	b, _ := json.Marshal(stale)
	a = call(t, ts, testToken, "PUT", podsPath+"/web", "application/json", b)
	if a.code != http.StatusConflict || a.status(t).Reason != "Conflict" {
		t.Fatalf("stale update: %d %s", a.code, a.body)
	}
	// With the current one it goes through.
	stale.ResourceVersion = created.ResourceVersion
	b, _ = json.Marshal(stale)
	if a = call(t, ts, testToken, "PUT", podsPath+"/web", "application/json", b); a.code != http.StatusOK {
		t.Fatalf("update: %d %s", a.code, a.body)
	}

	for _, p := range []string{podsPath + "/nope", "/api/v1/namespaces/nope/pods/web", "/api/v1/widgets", "/apis/nope/v1/things"} {
		if a = call(t, ts, testToken, "GET", p, "", nil); a.code != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", p, a.code)
		}
	}
	if a = call(t, ts, testToken, "POST", "/api/v1/namespaces/nope/pods", "application/json", podJSON("x", nil)); a.code != http.StatusNotFound {
		t.Fatalf("create in a missing namespace: %d %s", a.code, a.body)
	}
}

func TestInvalidObjectNamesTheField(t *testing.T) {
	ts, _ := newTestServer(t)
	body := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name"},"spec":{"containers":[{"name":"c"}]}}`)
	a := call(t, ts, testToken, "POST", podsPath, "application/json", body)
	if a.code != http.StatusUnprocessableEntity {
		t.Fatalf("code %d, want 422: %s", a.code, a.body)
	}
	s := a.status(t)
	if s.Reason != "Invalid" || s.Details == nil {
		t.Fatalf("status %+v", s)
	}
	fields := map[string]bool{}
	for _, c := range s.Details.Causes {
		fields[c.Field] = true
	}
	for _, want := range []string{"metadata.name", "spec.containers[0].image"} {
		if !fields[want] {
			t.Errorf("no cause for %s in %+v", want, s.Details.Causes)
		}
	}
	// Nothing was written.
	if a := call(t, ts, testToken, "GET", podsPath+"/Bad_Name", "", nil); a.code != http.StatusNotFound {
		t.Fatalf("invalid object was stored: %d", a.code)
	}
}

func TestMalformedAndOversizedBodies(t *testing.T) {
	ts, _ := newTestServer(t)
	a := call(t, ts, testToken, "POST", podsPath, "application/yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n"))
	if a.code != http.StatusBadRequest {
		t.Fatalf("malformed YAML: %d %s", a.code, a.body)
	}
	big := bytes.Repeat([]byte("x"), 100<<10)
	a = call(t, ts, testToken, "POST", podsPath, "application/json", big)
	if a.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d %s", a.code, a.body)
	}
	a = call(t, ts, testToken, "POST", podsPath, "application/json", []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"other"},"spec":{"containers":[{"name":"c","image":"x"}]}}`))
	if a.code != http.StatusBadRequest {
		t.Fatalf("namespace mismatch: %d %s", a.code, a.body)
	}
}

func TestYAMLBodyIsAccepted(t *testing.T) {
	ts, _ := newTestServer(t)
	body := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-yaml\nspec:\n  containers:\n  - name: c\n    image: busybox\n"
	if a := call(t, ts, testToken, "POST", podsPath, "application/yaml", []byte(body)); a.code != http.StatusCreated {
		t.Fatalf("YAML create: %d %s", a.code, a.body)
	}
}

type listAnswer struct {
	Metadata api.ListMeta `json:"metadata"`
	Items    []api.Pod    `json:"items"`
}

func list(t *testing.T, ts *httptest.Server, query string) listAnswer {
	t.Helper()
	a := call(t, ts, testToken, "GET", podsPath+"?"+query, "", nil)
	if a.code != http.StatusOK {
		t.Fatalf("list ?%s: %d %s", query, a.code, a.body)
	}
	var l listAnswer
	if err := json.Unmarshal(a.body, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestListSelectorsAndPagination(t *testing.T) {
	ts, _ := newTestServer(t)
	for i := 0; i < 12; i++ {
		tier := "web"
		if i%3 == 0 {
			tier = "db"
		}
		if a := call(t, ts, testToken, "POST", podsPath, "application/json", podJSON(fmt.Sprintf("p%02d", i), map[string]string{"tier": tier})); a.code != http.StatusCreated {
			t.Fatalf("create: %d %s", a.code, a.body)
		}
	}
	if l := list(t, ts, "labelSelector=tier%3Ddb"); len(l.Items) != 4 {
		t.Fatalf("labelSelector tier=db: %d items", len(l.Items))
	}
	if l := list(t, ts, "labelSelector=tier!%3Ddb"); len(l.Items) != 8 {
		t.Fatalf("labelSelector tier!=db: %d items", len(l.Items))
	}
	if l := list(t, ts, "fieldSelector=metadata.name%3Dp03"); len(l.Items) != 1 || l.Items[0].Name != "p03" {
		t.Fatalf("fieldSelector metadata.name: %+v", l.Items)
	}
	if a := call(t, ts, testToken, "GET", podsPath+"?fieldSelector=spec.bogus%3D1", "", nil); a.code != http.StatusBadRequest {
		t.Fatalf("unknown field selector: %d", a.code)
	}

	seen := map[string]bool{}
	cont, pages := "", 0
	for {
		q := "limit=5"
		if cont != "" {
			q += "&continue=" + cont
		}
		l := list(t, ts, q)
		pages++
		if len(l.Items) > 5 {
			t.Fatalf("page of %d items with limit 5", len(l.Items))
		}
		for _, p := range l.Items {
			if seen[p.Name] {
				t.Fatalf("%s seen twice", p.Name)
			}
			seen[p.Name] = true
		}
		if cont = l.Metadata.Continue; cont == "" {
			break
		}
	}
	if len(seen) != 12 || pages != 3 {
		t.Fatalf("paginated %d items in %d pages, want 12 in 3", len(seen), pages)
	}
}

func TestBindingAndFieldSelectorOnNodeName(t *testing.T) {
	ts, _ := newTestServer(t)
	call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("a", nil))
	call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("b", nil))
	bind := []byte(`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"a"},"target":{"kind":"Node","name":"n1"}}`)
	if a := call(t, ts, testToken, "POST", podsPath+"/a/binding", "application/json", bind); a.code != http.StatusCreated {
		t.Fatalf("bind: %d %s", a.code, a.body)
	}
	if a := call(t, ts, testToken, "POST", podsPath+"/a/binding", "application/json", bind); a.code != http.StatusConflict {
		t.Fatalf("second bind: %d %s", a.code, a.body)
	}
	l := list(t, ts, "fieldSelector=spec.nodeName%3Dn1")
	if len(l.Items) != 1 || l.Items[0].Name != "a" {
		t.Fatalf("spec.nodeName=n1: %+v", l.Items)
	}
	if c := l.Items[0].Status.Condition(api.PodScheduled); c == nil || c.Status != api.ConditionTrue {
		t.Fatalf("PodScheduled not set: %+v", l.Items[0].Status)
	}
	if l := list(t, ts, "fieldSelector=spec.nodeName%3D"); len(l.Items) != 1 || l.Items[0].Name != "b" {
		t.Fatalf("unbound pods: %+v", l.Items)
	}
}

func TestStatusSubresourceAndPatch(t *testing.T) {
	ts, _ := newTestServer(t)
	a := call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("s", nil))
	var p api.Pod
	_ = json.Unmarshal(a.body, &p)

	// A status write changes only the status.
	p.Status.Phase = api.PodRunning
	p.Labels = map[string]string{"ignored": "yes"}
	b, _ := json.Marshal(p)
	if a = call(t, ts, testToken, "PUT", podsPath+"/s/status", "application/json", b); a.code != http.StatusOK {
		t.Fatalf("status update: %d %s", a.code, a.body)
	}
	var got api.Pod
	_ = json.Unmarshal(a.body, &got)
	if got.Status.Phase != api.PodRunning || got.Labels["ignored"] != "" {
		t.Fatalf("status subresource: phase %q labels %v", got.Status.Phase, got.Labels)
	}
	// A main-resource write does not change the status.
	got.Status.Phase = api.PodFailed
	b, _ = json.Marshal(got)
	a = call(t, ts, testToken, "PUT", podsPath+"/s", "application/json", b)
	_ = json.Unmarshal(a.body, &got)
	if got.Status.Phase != api.PodRunning {
		t.Fatalf("PUT on the main resource changed status to %q", got.Status.Phase)
	}

	a = call(t, ts, testToken, "PATCH", podsPath+"/s", "application/merge-patch+json", []byte(`{"metadata":{"labels":{"app":"x"}}}`))
	if a.code != http.StatusOK {
		t.Fatalf("patch: %d %s", a.code, a.body)
	}
	_ = json.Unmarshal(a.body, &got)
	if got.Labels["app"] != "x" || got.Spec.Containers[0].Image != "busybox:1.36" {
		t.Fatalf("merge patch result: labels %v image %q", got.Labels, got.Spec.Containers[0].Image)
	}
	a = call(t, ts, testToken, "PATCH", podsPath+"/s", "application/merge-patch+json", []byte(`{"metadata":{"labels":{"app":null}}}`))
	var unlabelled api.Pod
	_ = json.Unmarshal(a.body, &unlabelled)
	if _, ok := unlabelled.Labels["app"]; ok || a.code != http.StatusOK {
		t.Fatalf("null in a merge patch did not remove the label: %d %v", a.code, unlabelled.Labels)
	}
	a = call(t, ts, testToken, "PATCH", podsPath+"/s", "application/merge-patch+json", []byte(`{"spec":{"containers":[{"name":"c","image":""}]}}`))
	if a.code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid patch: %d %s", a.code, a.body)
	}
}

func TestDelete(t *testing.T) {
	ts, _ := newTestServer(t)
	call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("d", nil))
	if a := call(t, ts, testToken, "DELETE", podsPath+"/d", "", nil); a.code != http.StatusOK {
		t.Fatalf("delete: %d %s", a.code, a.body)
	}
	if a := call(t, ts, testToken, "DELETE", podsPath+"/d", "", nil); a.code != http.StatusNotFound {
		t.Fatalf("second delete: %d", a.code)
	}
	if a := call(t, ts, testToken, "DELETE", "/api/v1/namespaces/default", "", nil); a.code != http.StatusForbidden {
		t.Fatalf("deleting the default namespace: %d", a.code)
	}
}

// watchLines opens a watch and returns a function that reads the next event.
func watchLines(t *testing.T, ts *httptest.Server, query string) func() (string, api.Pod) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+podsPath+"?watch=1&"+query, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("watch: %d %s", resp.StatusCode, b)
	}
	t.Cleanup(func() { resp.Body.Close() })
	lines := make(chan []byte)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- append([]byte(nil), sc.Bytes()...):
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() (string, api.Pod) {
		t.Helper()
		select {
		case l := <-lines:
			var ev struct {
				Type   string  `json:"type"`
				Object api.Pod `json:"object"`
			}
			if err := json.Unmarshal(l, &ev); err != nil {
				t.Fatalf("bad event %s: %v", l, err)
			}
			return ev.Type, ev.Object
		case <-time.After(10 * time.Second):
			t.Fatal("no watch event within 10s")
		}
		return "", api.Pod{}
	}
}

func TestWatch(t *testing.T) {
	ts, _ := newTestServer(t)
	call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("before", map[string]string{"app": "w"}))

	// Without a resourceVersion: existing objects come first as ADDED.
	next := watchLines(t, ts, "labelSelector=app%3Dw")
	if typ, p := next(); typ != "ADDED" || p.Name != "before" {
		t.Fatalf("first event %s %s", typ, p.Name)
	}
	call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("other", map[string]string{"app": "x"}))
	a := call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("after", map[string]string{"app": "w"}))
	var after api.Pod
	_ = json.Unmarshal(a.body, &after)
	if typ, p := next(); typ != "ADDED" || p.Name != "after" {
		t.Fatalf("live event %s %s (the selector should have hidden 'other')", typ, p.Name)
	}
	call(t, ts, testToken, "DELETE", podsPath+"/after", "", nil)
	if typ, p := next(); typ != "DELETED" || p.Name != "after" {
		t.Fatalf("delete event %s %s", typ, p.Name)
	}

	// From a resourceVersion: only what came after it.
	next2 := watchLines(t, ts, "resourceVersion="+after.ResourceVersion)
	if typ, p := next2(); typ != "DELETED" || p.Name != "after" {
		t.Fatalf("resumed watch: %s %s", typ, p.Name)
	}
}

func TestWatchFromCompactedRevisionIsGone(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{EventHistory: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nsKind, _ := api.LookupKind("namespaces")
	for i := 0; i < 30; i++ {
		ns := nsKind.NewObject().(*api.Namespace)
		ns.Name = fmt.Sprintf("ns%d", i)
		if _, err := st.Create(context.Background(), nsKind, ns); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Config{Store: st, Tokens: &Tokens{Admin: testToken}})
	ts := httptest.NewTLSServer(s)
	defer ts.Close()
	a := call(t, ts, testToken, "GET", "/api/v1/namespaces?watch=1&resourceVersion=1", "", nil)
	if a.code != http.StatusGone || !strings.Contains(a.status(t).Reason, "Expired") {
		t.Fatalf("watch from a compacted revision: %d %s", a.code, a.body)
	}
}

func TestMetricsAndReadiness(t *testing.T) {
	ts, _ := newTestServer(t)
	call(t, ts, testToken, "GET", podsPath, "", nil)
	a := call(t, ts, testToken, "GET", "/metrics", "", nil)
	if a.code != http.StatusOK {
		t.Fatalf("/metrics: %d", a.code)
	}
	for _, want := range []string{`cloudbox_apiserver_requests_total{code="200",resource="pods",verb="list"}`, "cloudbox_store_objects", "cloudbox_apiserver_request_duration_seconds_bucket"} {
		if !bytes.Contains(a.body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if a := call(t, ts, "", "GET", "/metrics", "", nil); a.code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d", a.code)
	}
	if a := call(t, ts, "", "GET", "/readyz", "", nil); a.code != http.StatusOK {
		t.Errorf("/readyz: %d", a.code)
	}
}

func TestParseJoinToken(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
	tok := JoinToken(ca, "s3cret")
	hash, secret, err := ParseJoinToken(tok)
	if err != nil || hash != CAHash(ca) || secret != "s3cret" {
		t.Fatalf("round trip: %q %q %v", hash, secret, err)
	}
	for _, bad := range []string{"", "K10abc::node:x", "K10" + strings.Repeat("a", 64) + "::nocolon"} {
		if _, _, err := ParseJoinToken(bad); err == nil {
			t.Errorf("ParseJoinToken(%q) accepted", bad)
		}
	}
}

func TestGracefulPodDeletion(t *testing.T) {
	ts, _ := newTestServer(t)
	call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("g", nil))
	call(t, ts, testToken, "POST", podsPath+"/g/binding", "application/json", []byte(`{"target":{"name":"n1"}}`))

	a := call(t, ts, testToken, "DELETE", podsPath+"/g", "", nil)
	var p api.Pod
	_ = json.Unmarshal(a.body, &p)
	if a.code != http.StatusOK || p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("graceful delete of a bound pod: %d %s", a.code, a.body)
	}
	if a := call(t, ts, testToken, "GET", podsPath+"/g", "", nil); a.code != http.StatusOK {
		t.Fatalf("a terminating pod must stay readable until its node stops it: %d", a.code)
	}
	// A shorter grace period shortens it; then grace 0 (what the agent sends) removes it.
	a = call(t, ts, testToken, "DELETE", podsPath+"/g?gracePeriodSeconds=5", "", nil)
	_ = json.Unmarshal(a.body, &p)
	if *p.DeletionGracePeriodSeconds != 5 {
		t.Fatalf("grace not shortened: %s", a.body)
	}
	if a := call(t, ts, testToken, "DELETE", podsPath+"/g", "application/json", []byte(`{"gracePeriodSeconds":0}`)); a.code != http.StatusOK {
		t.Fatalf("delete with grace 0: %d %s", a.code, a.body)
	}
	if a := call(t, ts, testToken, "GET", podsPath+"/g", "", nil); a.code != http.StatusNotFound {
		t.Fatalf("pod still there after grace 0: %d", a.code)
	}
	if a := call(t, ts, testToken, "DELETE", podsPath+"/x?gracePeriodSeconds=-3", "", nil); a.code != http.StatusBadRequest {
		t.Fatalf("negative grace: %d", a.code)
	}
}

func TestDiscoveryListsTheServedKinds(t *testing.T) {
	ts, _ := newTestServer(t)
	var versions struct {
		Versions []string `json:"versions"`
	}
	a := call(t, ts, testToken, "GET", "/api", "", nil)
	if err := json.Unmarshal(a.body, &versions); err != nil || a.code != http.StatusOK || len(versions.Versions) != 1 || versions.Versions[0] != "v1" {
		t.Fatalf("/api: %d %s", a.code, a.body)
	}
	var groups struct {
		Groups []struct {
			Name string `json:"name"`
		} `json:"groups"`
	}
	a = call(t, ts, testToken, "GET", "/apis", "", nil)
	if err := json.Unmarshal(a.body, &groups); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, g := range groups.Groups {
		found[g.Name] = true
	}
	if !found["apps"] || !found["batch"] {
		t.Fatalf("/apis lacks apps or batch: %s", a.body)
	}
	var list struct {
		GroupVersion string `json:"groupVersion"`
		Resources    []struct {
			Name       string   `json:"name"`
			Kind       string   `json:"kind"`
			Namespaced bool     `json:"namespaced"`
			ShortNames []string `json:"shortNames"`
		} `json:"resources"`
	}
	a = call(t, ts, testToken, "GET", "/api/v1", "", nil)
	if err := json.Unmarshal(a.body, &list); err != nil || list.GroupVersion != "v1" {
		t.Fatalf("/api/v1: %s", a.body)
	}
	res := map[string]bool{}
	for _, r := range list.Resources {
		res[r.Name] = r.Namespaced
	}
	if !res["pods"] || res["nodes"] {
		t.Fatalf("/api/v1 namespaced flags wrong: %v", res)
	}
	if _, ok := res["pods/log"]; !ok {
		t.Fatalf("/api/v1 lacks pods/log: %v", res)
	}
	if a := call(t, ts, testToken, "GET", "/apis/apps/v1", "", nil); a.code != http.StatusOK || !strings.Contains(string(a.body), `"deployments"`) {
		t.Fatalf("/apis/apps/v1: %d %s", a.code, a.body)
	}
	if a := call(t, ts, "", "GET", "/api", "", nil); a.code != http.StatusUnauthorized {
		t.Fatalf("/api without a token: %d", a.code)
	}
}
