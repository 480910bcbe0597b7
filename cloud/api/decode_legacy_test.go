package api

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// workload is a manifest of kind with the given apiVersion, template labels and, when
// selector is not "", that selector line.
func workload(apiVersion, kind, selector, labels string) string {
	s := "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata: {name: w, namespace: default}\nspec:\n"
	if kind == "StatefulSet" {
		s += "  serviceName: w\n"
	}
	if selector != "" {
		s += "  selector: " + selector + "\n"
	}
	return s + "  template:\n    metadata: {labels: " + labels + "}\n    spec:\n      containers: [{name: c, image: busybox}]\n"
}

func TestLegacySelectorDefault(t *testing.T) {
	const defaulted = "spec.selector defaulted to app=webapp,role=frontend from the template's labels; write it out for apps/v1"
	tests := []struct {
		apiVersion, kind string
		selector         string // as written; "" leaves it out
		labels           string
		want             map[string]string // the selector's matchLabels after decoding; nil: none
		note             bool              // the defaulting warning is given
		invalid          string            // what validation then says, or ""
	}{
		// The versions and kinds the course material uses.
		{"extensions/v1beta1", "Deployment", "", "{app: webapp, role: frontend}", map[string]string{"app": "webapp", "role": "frontend"}, true, ""},
		{"extensions/v1beta1", "ReplicaSet", "", "{app: webapp, role: frontend}", map[string]string{"app": "webapp", "role": "frontend"}, true, ""},
		{"extensions/v1beta1", "DaemonSet", "", "{app: webapp, role: frontend}", map[string]string{"app": "webapp", "role": "frontend"}, true, ""},
		{"apps/v1beta1", "Deployment", "", "{app: webapp, role: frontend}", map[string]string{"app": "webapp", "role": "frontend"}, true, ""},
		{"apps/v1beta1", "StatefulSet", "", "{app: webapp, role: frontend}", map[string]string{"app": "webapp", "role": "frontend"}, true, ""},
		{"apps/v1beta2", "Deployment", "", "{app: webapp, role: frontend}", map[string]string{"app": "webapp", "role": "frontend"}, true, ""},
		{"apps/v1beta2", "ReplicaSet", "", "{app: webapp, role: frontend}", map[string]string{"app": "webapp", "role": "frontend"}, true, ""},
		{"apps/v1beta2", "DaemonSet", "", "{app: webapp, role: frontend}", map[string]string{"app": "webapp", "role": "frontend"}, true, ""},
		{"apps/v1beta2", "StatefulSet", "", "{app: webapp, role: frontend}", map[string]string{"app": "webapp", "role": "frontend"}, true, ""},
		// apps/v1beta1 never served ReplicaSets; the alias takes it the same way.
		{"apps/v1beta1", "ReplicaSet", "", "{app: webapp, role: frontend}", map[string]string{"app": "webapp", "role": "frontend"}, true, ""},
		// A selector that is written out is kept as it is.
		{"apps/v1beta2", "Deployment", "{matchLabels: {app: webapp}}", "{app: webapp, role: frontend}", map[string]string{"app": "webapp"}, false, ""},
		// apps/v1 requires the selector, as Kubernetes does.
		{"apps/v1", "Deployment", "", "{app: webapp, role: frontend}", nil, false, "spec.selector: required"},
		{"apps/v1", "StatefulSet", "", "{app: webapp, role: frontend}", nil, false, "spec.selector: required"},
		// Without template labels there is nothing to default from.
		{"extensions/v1beta1", "Deployment", "", "{}", nil, false, "spec.selector: required"},
	}
	for _, tt := range tests {
		name := tt.apiVersion + " " + tt.kind
		if tt.selector != "" {
			name += " with a selector"
		}
		if tt.labels == "{}" {
			name += " without labels"
		}
		t.Run(name, func(t *testing.T) {
			objs, warnings, err := DecodeManifestsWithWarnings(strings.NewReader(workload(tt.apiVersion, tt.kind, tt.selector, tt.labels)))
			if err != nil {
				t.Fatal(err)
			}
			obj := objs[0]
			if got := obj.GetTypeMeta().APIVersion; got != "apps/v1" {
				t.Errorf("apiVersion = %s, want apps/v1", got)
			}
			sel, _ := selectorAndTemplate(obj)
			var got map[string]string
			if *sel != nil {
				got = (*sel).MatchLabels
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("selector matchLabels = %v, want %v", got, tt.want)
			}
			note := tt.apiVersion + " " + tt.kind + " w: " + defaulted
			if has := slices.Contains(warnings, note); has != tt.note {
				t.Errorf("warnings %q: has %q = %v, want %v", warnings, note, has, tt.note)
			}
			Default(obj)
			err = Validate(obj)
			switch {
			case tt.invalid == "" && err != nil:
				t.Errorf("does not validate: %v", err)
			case tt.invalid != "" && (err == nil || !strings.Contains(err.Error(), tt.invalid)):
				t.Errorf("validation: %v, want %q", err, tt.invalid)
			}
		})
	}
}

// TestLegacySelectorDefaultOfRequestBodies checks the path's version counts for a body
// that names none, and a body's own version over the path's.
func TestLegacySelectorDefaultOfRequestBodies(t *testing.T) {
	deployments, _ := LookupKind("deployments")
	body := `{"metadata": {"name": "w"}, "spec": {"template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}`
	tests := []struct {
		name, pathVersion, body string
		defaulted               bool
	}{
		{"legacy path, no apiVersion", "apps/v1beta2", body, true},
		{"apps/v1 path, no apiVersion", "apps/v1", body, false},
		{"no path version", "", body, false},
		{"legacy apiVersion on the apps/v1 path", "apps/v1", `{"apiVersion": "extensions/v1beta1", ` + body[1:], true},
		{"apps/v1 apiVersion on a legacy path", "apps/v1beta1", `{"apiVersion": "apps/v1", ` + body[1:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, warnings, err := Decoder{APIVersion: tt.pathVersion}.Object(deployments, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := obj.(*Deployment).Spec.Selector != nil; got != tt.defaulted {
				t.Errorf("selector defaulted = %v, want %v (warnings %q)", got, tt.defaulted, warnings)
			}
			if got := len(warnings) > 0 && strings.Contains(strings.Join(warnings, "\n"), "spec.selector defaulted to app=w"); got != tt.defaulted {
				t.Errorf("warnings %q", warnings)
			}
		})
	}
}

// TestLegacyManifestsApply checks that every course-style manifest in
// testdata/manifests/legacy decodes and validates.
func TestLegacyManifestsApply(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "manifests", "legacy", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no legacy manifests: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, warnings, err := DecodeManifestsWithWarnings(strings.NewReader(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) == 0 {
				t.Errorf("no warnings: each legacy manifest is there for one")
			}
			for _, o := range objs {
				if m := o.GetObjectMeta(); m.Namespace == "" {
					m.Namespace = "default"
				}
				Default(o)
				if err := Validate(o); err != nil {
					t.Errorf("%s: %v", ref(o), err)
				}
			}
		})
	}
}
