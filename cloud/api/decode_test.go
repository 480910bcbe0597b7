package api

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// testDeployment stands in for the Deployment kind, which does not exist yet, to test
// the apps group aliases.
type testDeployment struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       testDeploymentSpec `json:"spec"`
}

type testDeploymentSpec struct {
	Replicas *int32         `json:"replicas,omitempty"`
	Selector *LabelSelector `json:"selector,omitempty"`
	Template struct {
		ObjectMeta `json:"metadata"`
		Spec       PodSpec `json:"spec"`
	} `json:"template"`
}

func init() {
	Register(&KindInfo{Kind: "TestDeployment", Group: "apps", Version: "v1", Resource: "testdeployments",
		Singular: "testdeployment", Namespaced: true, New: func() Object { return &testDeployment{} }})
}

func readManifest(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "manifests", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ref is how the tests name a decoded object: "Pod demo/web".
func ref(o Object) string {
	return o.GetTypeMeta().APIVersion + " " + o.GetTypeMeta().Kind + " " + o.GetObjectMeta().Key()
}

func TestDecodeManifests(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     []string // ref of each object
		warnings []string
	}{
		{
			name: "example pod",
			in:   readManifest(t, "pod.yaml"),
			want: []string{"v1 Pod web"},
		},
		{
			name: "example namespace",
			in:   readManifest(t, "namespace.yaml"),
			want: []string{"v1 Namespace demo"},
		},
		{
			name: "multi-document YAML with a comment-only document",
			in:   readManifest(t, "multi.yaml"),
			want: []string{"v1 Namespace demo", "v1 Pod demo/web", "v1 Pod demo/worker"},
		},
		{
			name: "empty and comment-only documents",
			in:   "---\n---\n# nothing here\n---\n\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# trailing\n",
			want: []string{"v1 Namespace a"},
		},
		{
			name: "nothing at all",
			in:   "# only a comment\n",
		},
		{
			name: "separator with a comment and CRLF line ends",
			in:   "apiVersion: v1\r\nkind: Namespace\r\nmetadata: {name: a}\r\n--- # next\r\napiVersion: v1\r\nkind: Namespace\r\nmetadata: {name: b}\r\n",
			want: []string{"v1 Namespace a", "v1 Namespace b"},
		},
		{
			name: "content on the separator line",
			in:   "--- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n--- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n",
			want: []string{"v1 Namespace a", "v1 Namespace b"},
		},
		{
			name: "byte order mark",
			in:   "\ufeffapiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
			want: []string{"v1 Namespace a"},
		},
		{
			name: "one JSON object",
			in:   `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}`,
			want: []string{"v1 Namespace a"},
		},
		{
			name: "JSON stream",
			in:   "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"a\"}}\n{\"apiVersion\": \"v1\", \"kind\": \"Pod\",\n \"metadata\": {\"name\": \"p\", \"namespace\": \"a\"}, \"spec\": {\"containers\": [{\"name\": \"c\", \"image\": \"busybox\", \"command\": [\"echo\", \"}{\"]}]}}{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\"}}",
			want: []string{"v1 Namespace a", "v1 Pod a/p", "v1 Node n1"},
		},
		{
			name: "JSON List",
			in:   `{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}]}`,
			want: []string{"v1 Namespace a", "v1 Node n1"},
		},
		{
			name: "YAML List",
			in:   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: b}\n",
			want: []string{"v1 Namespace a", "v1 Namespace b"},
		},
		{
			name: "empty List",
			in:   "apiVersion: v1\nkind: List\nitems: []\n",
		},
		{
			name: "PodList items without kind, as the API lists them",
			in:   `{"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "7"}, "items": [{"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}]}`,
			want: []string{"v1 Pod default/p"},
		},
		{
			name: "JSON array of objects",
			in:   `[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}]`,
			want: []string{"v1 Namespace a"},
		},
		{
			name:     "apps/v1beta1 alias read as apps/v1",
			in:       "apiVersion: apps/v1beta1\nkind: TestDeployment\nmetadata: {name: d}\nspec:\n  replicas: 2\n",
			want:     []string{"apps/v1 TestDeployment d"},
			warnings: []string{"apps/v1beta1 TestDeployment d: apiVersion apps/v1beta1 is read as apps/v1"},
		},
		{
			name: "apps/v1beta2 and extensions/v1beta1 aliases",
			in:   "apiVersion: apps/v1beta2\nkind: TestDeployment\nmetadata: {name: a}\n---\napiVersion: extensions/v1beta1\nkind: TestDeployment\nmetadata: {name: b}\n",
			want: []string{"apps/v1 TestDeployment a", "apps/v1 TestDeployment b"},
			warnings: []string{
				"apps/v1beta2 TestDeployment a: apiVersion apps/v1beta2 is read as apps/v1",
				"extensions/v1beta1 TestDeployment b: apiVersion extensions/v1beta1 is read as apps/v1",
			},
		},
		{
			name: "unknown fields are kept as warnings",
			in:   "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  managedFields: []\nspec:\n  containers:\n  - name: web\n    image: busybox\n    resizePolicy: [{resourceName: cpu}]\n  enableServiceLinks: false\n",
			want: []string{"v1 Pod web"},
			warnings: []string{
				`v1 Pod web: metadata.managedFields: unknown field`,
				`v1 Pod web: spec.containers[0].resizePolicy: unknown field`,
				`v1 Pod web: spec.enableServiceLinks: unknown field`,
			},
		},
		{
			name:     "keys matched regardless of case",
			in:       "apiVersion: v1\nkind: Namespace\nMetadata: {name: a}\n",
			want:     []string{"v1 Namespace a"},
			warnings: []string{`v1 Namespace a: Metadata: read as "metadata" (cloudbox matches field names regardless of case, Kubernetes does not)`},
		},
		{
			name:     "duplicate keys: the last wins, with a warning",
			in:       "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nmetadata: {name: b}\n",
			want:     []string{"v1 Namespace b"},
			warnings: []string{`document 1: line 4: key "metadata" already set in map (the last one is used)`},
		},
		{
			name: "YAML flow mapping that looks like JSON at first",
			in:   "{apiVersion: v1, kind: Namespace, metadata: {name: a}}\n---\n{apiVersion: v1, kind: Namespace, metadata: {name: b}}\n",
			want: []string{"v1 Namespace a", "v1 Namespace b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, warnings, err := DecodeManifestsWithWarnings(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, ref(o))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("objects:\n got %q\nwant %q", got, tt.want)
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, tt.warnings)
			}
		})
	}
}

func TestDecodeManifestsContent(t *testing.T) {
	objs, err := DecodeManifests(strings.NewReader(readManifest(t, "pod.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := objs[0].(*Pod)
	if !ok {
		t.Fatalf("got %T, want *Pod", objs[0])
	}
	c := p.Spec.Containers[0]
	if c.Image != "busybox:1.36" || !reflect.DeepEqual(c.Command, []string{"sleep", "3600"}) {
		t.Errorf("container = %+v", c)
	}
	if cpu := c.Resources.Requests[ResourceCPU]; cpu.MilliValue() != 100 {
		t.Errorf("cpu request = %v, want 100m", cpu)
	}
	if mem := c.Resources.Requests[ResourceMemory]; mem.Value() != 64<<20 {
		t.Errorf("memory request = %v, want 64Mi", mem)
	}
	if p.Labels["app"] != "web" {
		t.Errorf("labels = %v", p.Labels)
	}
	Default(p)
	if err := Validate(p); err != nil {
		t.Errorf("the example pod does not validate: %v", err)
	}

	objs, err = DecodeManifests(strings.NewReader(readManifest(t, "multi.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetObjectMeta().Namespace == "" && o.GetTypeMeta().Kind == "Pod" {
			o.GetObjectMeta().Namespace = "default"
		}
		Default(o)
		if err := Validate(o); err != nil {
			t.Errorf("%s does not validate: %v", ref(o), err)
		}
	}
	web := objs[1].(*Pod)
	if port := web.Spec.Containers[0].ReadinessProbe.TCPSocket.Port; port != FromString("http") {
		t.Errorf("probe port = %#v, want the name http", port)
	}
}

func TestDecodeManifestsErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the whole message
		// invalid says the error must be ErrInvalid (a field is at fault).
		invalid bool
	}{
		{
			name:    "wrong type, with document index and name",
			in:      "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers: {name: web}\n",
			want:    "document 2 (Pod web): spec.containers: expected a list",
			invalid: true,
		},
		{
			name:    "several wrong types, with list indices",
			in:      "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: a\n    ports: [{containerPort: 1.5}, {containerPort: 99999999999}]\n    resources: {requests: {cpu: lots}}\n",
			want:    `document 1 (Pod web): spec.containers[0].ports[0].containerPort: expected an integer, found 1.5; spec.containers[0].ports[1].containerPort: 99999999999 is out of range for a 32-bit value; spec.containers[0].resources.requests[cpu]: quantity "lots" has no number`,
			invalid: true,
		},
		{
			name:    "a string where an object belongs",
			in:      "apiVersion: v1\nkind: Pod\nmetadata: web\n",
			want:    "document 1 (Pod): metadata: expected an object",
			invalid: true,
		},
		{
			name:    "YAML 1.1 booleans are not strings",
			in:      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n  labels: {enabled: yes}\n",
			want:    "document 1 (Namespace demo): metadata.labels[enabled]: expected a string; quote the value (YAML reads yes, no, on, off, y and n as booleans)",
			invalid: true,
		},
		{
			name:    "bad time",
			in:      "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, creationTimestamp: yesterday}\n",
			want:    `document 1 (Namespace a): metadata.creationTimestamp: time "yesterday" is not an RFC 3339 time such as "2006-01-02T15:04:05Z"`,
			invalid: true,
		},
		{
			name:    "unknown kind lists the served kinds",
			in:      "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Gizmo\nmetadata: {name: web}\n",
			want:    `document 2 (Gizmo web): kind: unknown kind "Gizmo" in v1 (cloudbox serves: {served})`,
			invalid: true,
		},
		{
			name:    "kind in the wrong group",
			in:      "apiVersion: apps/v1\nkind: Pod\nmetadata: {name: web}\n",
			want:    "document 1 (Pod web): apiVersion: kind Pod is served as v1, not apps/v1",
			invalid: true,
		},
		{
			name:    "kind missing",
			in:      "apiVersion: v1\nmetadata: {name: web}\n",
			want:    "document 1: kind: required",
			invalid: true,
		},
		{
			name:    "apiVersion missing",
			in:      "kind: Pod\nmetadata: {name: web}\n",
			want:    "document 1 (Pod web): apiVersion: required",
			invalid: true,
		},
		{
			name:    "kind not a string",
			in:      "apiVersion: v1\nkind: [Pod]\n",
			want:    "document 1: kind: expected a string",
			invalid: true,
		},
		{
			name: "malformed YAML in a later document has the file's line",
			in:   "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: x: y\n",
			want: "document 2: yaml: line 8: mapping values are not allowed in this context",
		},
		{
			name: "tab indentation",
			in:   "# header\n\napiVersion: v1\nkind: Pod\nmetadata:\n\tname: x\n",
			want: "document 1: yaml: line 6: found character that cannot start any token",
		},
		{
			name: "unclosed flow sequence",
			in:   "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers: [\n",
			want: "document 1: yaml: line 5: did not find expected node content",
		},
		{
			name: "error without a line from the parser gets the document's",
			in:   "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkey: \"\x01\"\n",
			want: "document 2: yaml: control characters are not allowed (in the document starting at line 4)",
		},
		{
			name: "infinity has no JSON form",
			in:   "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nx: .inf\n",
			want: "document 1: json: unsupported value: +Inf (in the document starting at line 1)",
		},
		{
			name: "a document that is a string",
			in:   "hello\n",
			want: "document 1: expected an object with apiVersion and kind, found a string",
		},
		{
			name: "malformed JSON in a stream has its line",
			in:   "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"x\"}}\n\n{\"apiVersion\": \"v1\",\n \"kind\": \"Namespace\" \"metadata\": {}}",
			want: `document 2: line 4: invalid character '"' after object key:value pair`,
		},
		{
			name: "malformed JSON object",
			in:   "\n\n{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Namespace\",\n  \"metadata\": {\"name\": \"x\"},\n}\n",
			want: "document 1: line 7: invalid character '}' looking for beginning of object key string",
		},
		{
			name: "unterminated JSON value after a good one",
			in:   "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"x\"}}\n{\"apiVersion\": \"v1\",\n",
			want: "document 2: line 2: the JSON value starting there is not complete",
		},
		{
			name: "garbage between JSON values",
			in:   "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"x\"}}\n42\n",
			want: "document 2: line 2: expected a JSON object, found '4'",
		},
		{
			name:    "bad List item",
			in:      "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec: {containers: 3}\n",
			want:    "document 1, item 2 (Pod p): spec.containers: expected a list",
			invalid: true,
		},
		{
			name: "List item that is not an object",
			in:   "apiVersion: v1\nkind: List\nitems: [3]\n",
			want: "document 1, item 1: expected an object with apiVersion and kind, found a number",
		},
		{
			name:    "List items not a list",
			in:      "apiVersion: v1\nkind: List\nitems: {a: b}\n",
			want:    "document 1 (List): items: expected a list",
			invalid: true,
		},
		{
			name: "nested List",
			in:   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: []\n",
			want: "document 1, item 1 (List): a List may not hold another List",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := DecodeManifests(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("no error; decoded %d objects", len(objs))
			}
			if want := strings.ReplaceAll(tt.want, "{served}", servedKinds()); err.Error() != want {
				t.Errorf("error:\n got %s\nwant %s", err, want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Errorf("error is %T, not *DecodeError", err)
			}
			if got := errors.Is(err, ErrInvalid); got != tt.invalid {
				t.Errorf("errors.Is(err, ErrInvalid) = %v, want %v", got, tt.invalid)
			}
		})
	}
}

func TestDecodeManifestsSizeLimit(t *testing.T) {
	big := strings.Repeat("x", MaxDocumentBytes)
	tests := []struct {
		name, in, want string
	}{
		{"YAML document", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n  annotations:\n    a: " + big + "\n",
			"document 2: the document starting at line 4 is larger than 3145728 bytes"},
		{"one long line", "a: " + big, "document 1: the document starting at line 1 is larger than 3145728 bytes"},
		{"JSON value", `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}` + "\n" + `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "` + big + `"}}`,
			"document 2: the JSON value starting at line 2 is larger than 3145728 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeManifests(strings.NewReader(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}

	// Many documents, each under the limit, make a stream over it: that is fine.
	var b strings.Builder
	doc := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  annotations:\n    a: " + strings.Repeat("x", 1<<20) + "\n---\n"
	for range 4 {
		b.WriteString(doc)
	}
	objs, err := DecodeManifests(strings.NewReader(b.String()))
	if err != nil || len(objs) != 4 {
		t.Errorf("4 documents of 1 MiB: %d objects, error %v", len(objs), err)
	}
}

func TestDecodeObject(t *testing.T) {
	pods, _ := LookupKind("pods")
	deployments, _ := LookupKind("testdeployments")
	tests := []struct {
		name     string
		kind     *KindInfo
		in       string
		want     string // ref of the object
		warnings []string
	}{
		{name: "JSON", kind: pods, in: `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}`, want: "v1 Pod p"},
		{name: "YAML", kind: pods, in: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", want: "v1 Pod p"},
		{name: "apiVersion and kind left out", kind: pods, in: `{"metadata": {"name": "p"}}`, want: "v1 Pod p"},
		{name: "kind left out", kind: pods, in: `{"apiVersion": "v1", "metadata": {"name": "p"}}`, want: "v1 Pod p"},
		{name: "alias", kind: deployments, in: `{"apiVersion": "apps/v1beta2", "kind": "TestDeployment", "metadata": {"name": "d"}}`, want: "apps/v1 TestDeployment d",
			warnings: []string{"apps/v1beta2 TestDeployment d: apiVersion apps/v1beta2 is read as apps/v1"}},
		{name: "unknown field", kind: pods, in: `{"metadata": {"name": "p"}, "spec": {"overhead": {}}}`, want: "v1 Pod p",
			warnings: []string{`v1 Pod p: spec.overhead: unknown field`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, warnings, err := DecodeObjectWithWarnings(tt.kind, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := ref(obj); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, tt.warnings)
			}
		})
	}
}

func TestDecodeObjectErrors(t *testing.T) {
	pods, _ := LookupKind("pods")
	tests := []struct {
		name    string
		in      string
		want    string
		invalid bool
	}{
		{name: "kind disagrees with the URL", in: `{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}`,
			want: "the body is a Node, but pods hold kind Pod"},
		{name: "apiVersion disagrees with the URL", in: `{"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "n"}}`,
			want: "the body has apiVersion apps/v1, but pods are served as v1"},
		{name: "wrong type", in: `{"metadata": {"name": "p"}, "spec": {"containers": {}}}`,
			want: "spec.containers: expected a list", invalid: true},
		{name: "two wrong types", in: `{"metadata": {"name": 1, "labels": []}}`,
			want: "metadata.labels: expected an object; metadata.name: expected a string; quote the value", invalid: true},
		{name: "List", in: `{"apiVersion": "v1", "kind": "List", "items": []}`, want: "expected one Pod, found a List"},
		{name: "array", in: `[]`, want: "expected one Pod, found a list"},
		{name: "two objects", in: "metadata: {name: a}\n---\nmetadata: {name: b}\n", want: "the body holds 2 objects; expected one Pod"},
		{name: "empty", in: "# nothing\n", want: "the body holds no object; expected a Pod"},
		{name: "malformed JSON", in: "{\"metadata\": {\"name\": \"a\"},\n\"spec\": {]}", want: "line 2: invalid character ']' looking for beginning of object key string"},
		{name: "incomplete JSON", in: "{\"metadata\": {\"name\": \"a\"}\n", want: "line 2: the JSON value is not complete"},
		{name: "YAML flow mapping", in: "{metadata: {name: a}, spec: {containers: [}}", want: "yaml: did not find expected node content (in the document starting at line 1)"},
		{name: "too big", in: `{"metadata": {"name": "` + strings.Repeat("a", MaxDocumentBytes) + `"}}`,
			want: "the object is 3145754 bytes, more than the limit of 3145728"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := DecodeObject(pods, []byte(tt.in))
			if err == nil {
				t.Fatalf("no error; got %v", ref(obj))
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			if got := errors.Is(err, ErrInvalid); got != tt.invalid {
				t.Errorf("errors.Is(err, ErrInvalid) = %v, want %v", got, tt.invalid)
			}
		})
	}
}

// TestDecodeRoundTrip checks that what the API server writes, it reads back the same.
func TestDecodeRoundTrip(t *testing.T) {
	objs, err := DecodeManifests(strings.NewReader(readManifest(t, "multi.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		Default(o)
		js, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := KindOf(o)
		back, err := DecodeObject(k, js)
		if err != nil {
			t.Fatalf("%s: %v", ref(o), err)
		}
		if !reflect.DeepEqual(back, o) {
			t.Errorf("%s changed in a round trip:\n got %+v\nwant %+v", ref(o), back, o)
		}
	}
}

// servedKinds is the list an unknown-kind error names, from the registry, so adding
// a kind does not break this test.
func servedKinds() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, k.Kind)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
