package api

import (
	"reflect"
	"strings"
	"testing"
)

func TestFieldsOf(t *testing.T) {
	p := &Pod{ObjectMeta: ObjectMeta{Name: "web", Namespace: "demo"},
		Spec:   PodSpec{NodeName: "n1", RestartPolicy: RestartNever, SchedulerName: "default-scheduler", HostNetwork: true},
		Status: PodStatus{Phase: PodRunning, PodIP: "10.88.0.5"}}
	want := map[string]string{
		"metadata.name": "web", "metadata.namespace": "demo",
		"spec.nodeName": "n1", "spec.restartPolicy": "Never", "spec.schedulerName": "default-scheduler",
		"spec.serviceAccountName": "", "spec.hostNetwork": "true",
		"status.phase": "Running", "status.podIP": "10.88.0.5",
	}
	if got := FieldsOf(p); !reflect.DeepEqual(got, want) {
		t.Errorf("FieldsOf(pod) =\n%v\nwant\n%v", got, want)
	}
	n := &Node{ObjectMeta: ObjectMeta{Name: "n1"}, Spec: NodeSpec{Unschedulable: true}}
	want = map[string]string{"metadata.name": "n1", "metadata.namespace": "", "spec.unschedulable": "true"}
	if got := FieldsOf(n); !reflect.DeepEqual(got, want) {
		t.Errorf("FieldsOf(node) = %v, want %v", got, want)
	}
	ns := &Namespace{ObjectMeta: ObjectMeta{Name: "demo"}}
	want = map[string]string{"metadata.name": "demo", "metadata.namespace": ""}
	if got := FieldsOf(ns); !reflect.DeepEqual(got, want) {
		t.Errorf("FieldsOf(namespace) = %v, want %v", got, want)
	}
}

func TestParseFieldSelector(t *testing.T) {
	pod := FieldsOf(&Pod{ObjectMeta: ObjectMeta{Name: "web", Namespace: "demo"},
		Spec: PodSpec{NodeName: "n1", RestartPolicy: RestartAlways}, Status: PodStatus{Phase: PodRunning}})
	tests := []struct {
		in     string
		string string
		match  bool
	}{
		{"", "", true},
		{"spec.nodeName=n1", "spec.nodeName=n1", true},
		{"spec.nodeName==n1", "spec.nodeName=n1", true},
		{"spec.nodeName = n1", "spec.nodeName=n1", true},
		{"spec.nodeName=n2", "spec.nodeName=n2", false},
		{"spec.nodeName!=n2", "spec.nodeName!=n2", true},
		{"spec.nodeName=", "spec.nodeName=", false},
		{"status.podIP=", "status.podIP=", true},
		{"status.phase!=Failed,status.phase!=Succeeded", "status.phase!=Failed,status.phase!=Succeeded", true},
		{"metadata.namespace=demo,metadata.name=web", "metadata.namespace=demo,metadata.name=web", true},
		{"metadata.name=web,spec.restartPolicy=Never", "metadata.name=web,spec.restartPolicy=Never", false},
		{`metadata.name=a\,b\=c\\d`, `metadata.name=a\,b\=c\\d`, false},
		{"spec.unschedulable=false", "spec.unschedulable=false", false}, // absent from a pod's fields: ""
	}
	for _, tt := range tests {
		s, err := ParseFieldSelector(tt.in)
		if err != nil {
			t.Errorf("ParseFieldSelector(%q): %v", tt.in, err)
			continue
		}
		if s.String() != tt.string {
			t.Errorf("ParseFieldSelector(%q).String() = %q, want %q", tt.in, s.String(), tt.string)
		}
		if got := s.Matches(pod); got != tt.match {
			t.Errorf("ParseFieldSelector(%q).Matches = %v, want %v", tt.in, got, tt.match)
		}
		if s.Empty() != (tt.in == "") {
			t.Errorf("ParseFieldSelector(%q).Empty() = %v", tt.in, s.Empty())
		}
	}

	s, _ := ParseFieldSelector(`metadata.name=a\,b\=c\\d`)
	if !s.Matches(map[string]string{"metadata.name": `a,b=c\d`}) {
		t.Errorf("escaped value does not match")
	}
	if v, ok := s.RequiresExactMatch("metadata.name"); !ok || v != `a,b=c\d` {
		t.Errorf("RequiresExactMatch = %q, %v", v, ok)
	}
	s, _ = ParseFieldSelector("spec.nodeName!=n1")
	if _, ok := s.RequiresExactMatch("spec.nodeName"); ok {
		t.Errorf("RequiresExactMatch of != is true")
	}
	node := FieldsOf(&Node{ObjectMeta: ObjectMeta{Name: "n1"}, Spec: NodeSpec{Unschedulable: true}})
	s, _ = ParseFieldSelector("spec.unschedulable=true")
	if !s.Matches(node) {
		t.Errorf("spec.unschedulable=true does not match a cordoned node")
	}
}

func TestParseFieldSelectorErrors(t *testing.T) {
	// Every registered kind's fields, so that a new kind's fields do not break this test.
	supported := strings.Join(allSelectableFields(), ", ")
	tests := []struct{ in, want string }{
		{"spec.host=a", `field selector "spec.host=a": field "spec.host" is not supported (supported: ` + supported + `)`},
		{"spec.nodeName", `field selector "spec.nodeName": term "spec.nodeName" is not field=value, field==value or field!=value`},
		{"=a", `field selector "=a": term "=a" has no field name`},
		{"spec.nodeName=a,", `field selector "spec.nodeName=a,": term "" is not field=value, field==value or field!=value`},
		{"spec.nodeName=a=b", `field selector "spec.nodeName=a=b": term "spec.nodeName=a=b": value "a=b" must escape '=' with a backslash`},
		{`spec.nodeName=a\b`, `field selector "spec.nodeName=a\\b": term "spec.nodeName=a\\b": invalid escape in value "a\\b": only \\, \, and \= may be escaped`},
	}
	for _, tt := range tests {
		_, err := ParseFieldSelector(tt.in)
		if err == nil {
			t.Errorf("ParseFieldSelector(%q): no error", tt.in)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseFieldSelector(%q):\n got %s\nwant %s", tt.in, err, tt.want)
		}
	}

	nodes, _ := LookupKind("nodes")
	_, err := ParseFieldSelectorForKind(nodes, "spec.nodeName=n1")
	want := `field selector "spec.nodeName=n1": field "spec.nodeName" is not supported (supported: metadata.name, metadata.namespace, spec.unschedulable)`
	if err == nil || err.Error() != want {
		t.Errorf("ParseFieldSelectorForKind(nodes):\n got %v\nwant %s", err, want)
	}
	if _, err := ParseFieldSelectorForKind(nodes, "spec.unschedulable=true"); err != nil {
		t.Errorf("ParseFieldSelectorForKind(nodes): %v", err)
	}
}
