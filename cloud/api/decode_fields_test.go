package api

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestUnknownFieldSuggestions(t *testing.T) {
	const pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: busybox\n"
	tests := []struct {
		name, in string
		want     []string
	}{
		{"one letter missing", pod + "    port: [{containerPort: 80}]\n",
			[]string{`v1 Pod p: spec.containers[0].port: unknown field (did you mean "ports"?)`}},
		{"two letters swapped", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  contianers: []\n",
			[]string{`v1 Pod p: spec.contianers: unknown field (did you mean "containers"?)`}},
		{"a swap and a case", pod + "    imagePullPoilcy: Always\n",
			[]string{`v1 Pod p: spec.containers[0].imagePullPoilcy: unknown field (did you mean "imagePullPolicy"?)`}},
		{"metadata", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, lables: {a: b}}\n",
			[]string{`v1 Pod p: metadata.lables: unknown field (did you mean "labels"?)`}},
		{"deep in a workload", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replica: 2\n  template:\n    spec:\n      containers:\n      - name: c\n        port: [{containerPort: 80}]\n",
			[]string{
				`apps/v1 Deployment d: spec.replica: unknown field (did you mean "replicas"?)`,
				`apps/v1 Deployment d: spec.template.spec.containers[0].port: unknown field (did you mean "ports"?)`,
			}},
		{"nothing near", pod + "    foo: 1\n", []string{`v1 Pod p: spec.containers[0].foo: unknown field`}},
		{"too far for a short name", pod + "    tty2: true\n    envs: []\n",
			[]string{`v1 Pod p: spec.containers[0].envs: unknown field (did you mean "env"?)`, `v1 Pod p: spec.containers[0].tty2: unknown field (did you mean "tty"?)`}},
		{"case only", pod + "    ImagePullPolicy: Always\n",
			[]string{`v1 Pod p: spec.containers[0].ImagePullPolicy: read as "imagePullPolicy" (cloudbox matches field names regardless of case, Kubernetes does not)`}},
		{"map keys are not fields", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {prot: x}}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := DecodeManifestsWithWarnings(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(warnings, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, tt.want)
			}
		})
	}
}

func TestFieldValidation(t *testing.T) {
	const in = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    port: []\n    Command: [sh]\n"
	const dup = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nmetadata: {name: b}\n"
	tests := []struct {
		validation FieldValidation
		in         string
		warnings   []string
		err        string // the whole error, or "" for none
	}{
		{FieldValidationWarn, in, []string{
			`v1 Pod p: spec.containers[0].Command: read as "command" (cloudbox matches field names regardless of case, Kubernetes does not)`,
			`v1 Pod p: spec.containers[0].port: unknown field (did you mean "ports"?)`,
		}, ""},
		{"", dup, []string{`document 1: line 4: key "metadata" already set in map (the last one is used)`}, ""},
		{FieldValidationIgnore, in, nil, ""},
		{FieldValidationIgnore, dup, nil, ""},
		{FieldValidationStrict, in, nil,
			`document 1 (Pod p): spec.containers[0].Command: unknown field (did you mean "command"?); spec.containers[0].port: unknown field (did you mean "ports"?)`},
		{FieldValidationStrict, dup, nil,
			`document 1: line 4: key "metadata" already set in map (strict field validation refuses duplicate keys)`},
		// What Strict refuses is only what would be dropped: legacy defaults still warn.
		{FieldValidationStrict, "apiVersion: apps/v1beta2\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  template:\n    metadata: {labels: {a: b}}\n", []string{
			"apps/v1beta2 ReplicaSet r: apiVersion apps/v1beta2 is read as apps/v1",
			"apps/v1beta2 ReplicaSet r: spec.selector defaulted to a=b from the template's labels; write it out for apps/v1",
		}, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.validation)+" "+strings.SplitN(tt.in, "\n", 3)[1], func(t *testing.T) {
			objs, warnings, err := Decoder{FieldValidation: tt.validation}.Manifests(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error:\n got %v\nwant %s", err, tt.err)
				}
				if objs != nil {
					t.Errorf("objects returned with the error: %v", objs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, tt.warnings)
			}
		})
	}
}

func TestFieldValidationOfRequestBodies(t *testing.T) {
	pods, _ := LookupKind("pods")
	_, _, err := Decoder{FieldValidation: FieldValidationStrict}.Object(pods, []byte(`{"metadata": {"name": "p"}, "spec": {"nodname": "n"}}`))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "spec.nodname" || fe.Reason != `unknown field (did you mean "nodeName"?)` || !errors.Is(err, ErrInvalid) {
		t.Fatalf("strict: %#v", err)
	}
}

func TestParseFieldValidation(t *testing.T) {
	for in, want := range map[string]FieldValidation{"": FieldValidationWarn, "Strict": FieldValidationStrict, "strict": FieldValidationStrict, "Warn": FieldValidationWarn, "IGNORE": FieldValidationIgnore} {
		if got, err := ParseFieldValidation(in); err != nil || got != want {
			t.Errorf("ParseFieldValidation(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFieldValidation("loose"); err == nil || err.Error() != `fieldValidation: "loose" is not one of Strict, Warn, Ignore` {
		t.Errorf("ParseFieldValidation(loose): %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"port", "ports", 1}, {"ports", "port", 1}, {"contianers", "containers", 1},
		{"kitten", "sitting", 3}, {"", "abc", 3}, {"ca", "abc", 3}, {"über", "uber", 1},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
