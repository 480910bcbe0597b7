package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// send is call with the admin token and a string body, returning the answer's
// Warning headers too.
func send(t *testing.T, ts *httptest.Server, method, path, contentType, body string) (answer, []string) {
	t.Helper()
	a := call(t, ts, testToken, method, path, contentType, []byte(body))
	return a, a.header.Values("Warning")
}

// legacyDeployment is a Deployment as course material writes it: no selector.
func legacyDeployment(apiVersion, name, containerExtra string) string {
	av := ""
	if apiVersion != "" {
		av = `"apiVersion": "` + apiVersion + `", "kind": "Deployment", `
	}
	return `{` + av + `"metadata": {"name": "` + name + `"}, "spec": {"template": {"metadata": {"labels": {"app": "webapp", "role": "frontend"}},
		"spec": {"containers": [{"name": "web", "image": "busybox:1.36"` + containerExtra + `}]}}}}`
}

func TestLegacyVersionsDefaultTheSelector(t *testing.T) {
	ts, _ := newTestServer(t)
	const note = `spec.selector defaulted to app=webapp,role=frontend from the template's labels; write it out for apps/v1`
	tests := []struct {
		name, path, body string
		code             int
		warnings         []string
	}{
		{"apps/v1beta2 body on its path", "/apis/apps/v1beta2/namespaces/default/deployments", legacyDeployment("apps/v1beta2", "web-frontend", ""), http.StatusCreated,
			[]string{
				`299 - "apps/v1beta2 Deployment web-frontend: apiVersion apps/v1beta2 is read as apps/v1"`,
				`299 - "apps/v1beta2 Deployment web-frontend: ` + note + `"`,
			}},
		{"extensions/v1beta1 path, body without apiVersion", "/apis/extensions/v1beta1/namespaces/default/deployments", legacyDeployment("", "ext", ""), http.StatusCreated,
			[]string{
				`299 - "extensions/v1beta1 Deployment ext: apiVersion extensions/v1beta1 is read as apps/v1"`,
				`299 - "extensions/v1beta1 Deployment ext: ` + note + `"`,
			}},
		{"apps/v1 still requires it", "/apis/apps/v1/namespaces/default/deployments", legacyDeployment("apps/v1", "strict", ""), http.StatusUnprocessableEntity, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, warnings := send(t, ts, "POST", tt.path, "application/json", tt.body)
			if a.code != tt.code {
				t.Fatalf("code %d, want %d: %s", a.code, tt.code, a.body)
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("Warning headers:\n got %q\nwant %q", warnings, tt.warnings)
			}
			if tt.code != http.StatusCreated {
				if s := a.status(t); !strings.Contains(s.Message, "spec.selector: required") {
					t.Errorf("message %q", s.Message)
				}
				return
			}
			var d api.Deployment
			if err := json.Unmarshal(a.body, &d); err != nil {
				t.Fatal(err)
			}
			if d.APIVersion != "apps/v1" || d.Spec.Selector == nil || !reflect.DeepEqual(d.Spec.Selector.MatchLabels, map[string]string{"app": "webapp", "role": "frontend"}) {
				t.Errorf("stored %s with selector %+v", d.APIVersion, d.Spec.Selector)
			}
		})
	}
}

// selectedDeployment is an apps/v1 Deployment with its selector.
func selectedDeployment(name, containerExtra string) string {
	return strings.Replace(legacyDeployment("apps/v1", name, containerExtra),
		`"spec": {"template"`, `"spec": {"selector": {"matchLabels": {"app": "webapp"}}, "template"`, 1)
}

func TestUnknownFieldsAndFieldValidation(t *testing.T) {
	ts, _ := newTestServer(t)
	const path = "/apis/apps/v1/namespaces/default/deployments"
	body := func(name string) string { return selectedDeployment(name, `, "port": [{"containerPort": 80}]`) }
	// The quotes of the suggestion are escaped, as client-go expects.
	const warning = `299 - "apps/v1 Deployment %s: spec.template.spec.containers[0].port: unknown field (did you mean \"ports\"?)"`

	for name, q := range map[string]string{"default": "", "warn": "?fieldValidation=Warn"} {
		a, warnings := send(t, ts, "POST", path+q, "application/json", body(name))
		if a.code != http.StatusCreated {
			t.Fatalf("%q: code %d: %s", q, a.code, a.body)
		}
		if want := strings.Replace(warning, "%s", name, 1); !reflect.DeepEqual(warnings, []string{want}) {
			t.Errorf("%q: Warning headers:\n got %q\nwant %q", q, warnings, want)
		}
	}

	a, warnings := send(t, ts, "POST", path+"?fieldValidation=Ignore", "application/json", body("ignored"))
	if a.code != http.StatusCreated || len(warnings) != 0 {
		t.Errorf("Ignore: code %d, warnings %q: %s", a.code, warnings, a.body)
	}

	a, _ = send(t, ts, "POST", path+"?fieldValidation=Strict", "application/json", body("refused"))
	if a.code != http.StatusUnprocessableEntity {
		t.Fatalf("Strict: code %d: %s", a.code, a.body)
	}
	s := a.status(t)
	if s.Message != `spec.template.spec.containers[0].port: unknown field (did you mean "ports"?)` || s.Details == nil || len(s.Details.Causes) != 1 ||
		s.Details.Causes[0].Field != "spec.template.spec.containers[0].port" {
		t.Errorf("Strict: %+v %+v", s, s.Details)
	}
	if a, _ := send(t, ts, "GET", path+"/refused", "", ""); a.code != http.StatusNotFound {
		t.Errorf("the refused object was written: %d %s", a.code, a.body)
	}

	if a, _ := send(t, ts, "POST", path+"?fieldValidation=Loose", "application/json", body("loose")); a.code != http.StatusBadRequest ||
		!strings.Contains(a.status(t).Message, `fieldValidation: "Loose" is not one of Strict, Warn, Ignore`) {
		t.Errorf("bad directive: %d %s", a.code, a.body)
	}

	// A PUT warns the same way.
	a, warnings = send(t, ts, "PUT", path+"/ignored", "application/json", body("ignored"))
	if a.code != http.StatusOK || !reflect.DeepEqual(warnings, []string{strings.Replace(warning, "%s", "ignored", 1)}) {
		t.Errorf("PUT: code %d, warnings %q: %s", a.code, warnings, a.body)
	}
}

// TestPatchFieldValidation checks that kubectl apply's strategic merge patches pass
// Strict (their directives are not fields) and that a patch's unknown field is named.
func TestPatchFieldValidation(t *testing.T) {
	ts, _ := newTestServer(t)
	const path = "/apis/apps/v1/namespaces/default/deployments"
	if a, _ := send(t, ts, "POST", path, "application/json", selectedDeployment("web", "")); a.code != http.StatusCreated {
		t.Fatalf("create: %d %s", a.code, a.body)
	}
	apply := `{"metadata": {"labels": {"a": "b"}}, "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "web"}],
		"containers": [{"name": "web", "image": "busybox:1.37"}]}}}}`
	a, warnings := send(t, ts, "PATCH", path+"/web?fieldValidation=Strict", "application/strategic-merge-patch+json", apply)
	if a.code != http.StatusOK || len(warnings) != 0 {
		t.Fatalf("strategic merge patch: code %d, warnings %q: %s", a.code, warnings, a.body)
	}
	a, _ = send(t, ts, "PATCH", path+"/web?fieldValidation=Strict", "application/merge-patch+json", `{"spec": {"replica": 2}}`)
	if a.code != http.StatusBadRequest || !strings.Contains(a.status(t).Message, `spec.replica: unknown field (did you mean "replicas"?)`) {
		t.Errorf("Strict patch: %d %s", a.code, a.body)
	}
	a, warnings = send(t, ts, "PATCH", path+"/web", "application/merge-patch+json", `{"spec": {"replica": 2}}`)
	if want := `299 - "apps/v1 Deployment web: spec.replica: unknown field (did you mean \"replicas\"?)"`; a.code != http.StatusOK || !reflect.DeepEqual(warnings, []string{want}) {
		t.Errorf("patch: code %d, warnings %q, want %q", a.code, warnings, want)
	}
}

func TestWarningHeaderFormat(t *testing.T) {
	tests := []struct{ in, want string }{
		{`spec.x: unknown field (did you mean "y"?)`, `299 - "spec.x: unknown field (did you mean \"y\"?)"`},
		{`a\b`, `299 - "a\\b"`},
		{"key\nwith\tcontrols\x00", `299 - "key with controls "`},
		{"bad \xff utf-8", "299 - \"bad \uFFFD utf-8\""},
		{strings.Repeat("é", maxWarningBytes), `299 - "` + strings.Repeat("é", maxWarningBytes/2) + `..."`},
	}
	for _, tt := range tests {
		if got := warningHeader(tt.in); got != tt.want {
			t.Errorf("warningHeader(%q) =\n %q\nwant %q", tt.in, got, tt.want)
		}
	}
	// A warning given twice (a retried update decodes its body again) is sent once.
	rec := httptest.NewRecorder()
	addWarnings(rec, []string{"a", "b"})
	addWarnings(rec, []string{"a"})
	if got := rec.Header().Values("Warning"); !reflect.DeepEqual(got, []string{`299 - "a"`, `299 - "b"`}) {
		t.Errorf("headers %q", got)
	}
}
