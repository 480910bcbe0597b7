package api

import (
	"strings"
	"testing"
)

func validControllerRevision() *ControllerRevision {
	r := &ControllerRevision{TypeMeta: TypeMeta{APIVersion: "apps/v1", Kind: "ControllerRevision"}, Revision: 1}
	r.Namespace, r.Name = "default", "agent-5d8c7f6b"
	r.Labels = map[string]string{LabelControllerRevisionHash: "5d8c7f6b"}
	r.Data = &PodTemplateSpec{Spec: PodSpec{Containers: []Container{{Name: "c", Image: "busybox:1.36"}}}}
	return r
}

func TestValidateControllerRevision(t *testing.T) {
	tests := []struct {
		name   string
		change func(*ControllerRevision)
		want   string // "" for valid
	}{
		{"valid", func(*ControllerRevision) {}, ""},
		// SET-HASH of a set with a 63-character name is longer than a label.
		{"long subdomain name", func(r *ControllerRevision) { r.Name = strings.Repeat("a", 63) + "-5d8c7f6b" }, ""},
		{"no name", func(r *ControllerRevision) { r.Name = "" }, "metadata.name: required"},
		{"bad name", func(r *ControllerRevision) { r.Name = "Agent_1" }, "metadata.name"},
		{"no data", func(r *ControllerRevision) { r.Data = nil }, "data: required"},
		{"revision 0", func(r *ControllerRevision) { r.Revision = 0 }, "revision: 0 must be greater than or equal to 1"},
		{"negative revision", func(r *ControllerRevision) { r.Revision = -3 }, "revision: -3 must be greater than or equal to 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validControllerRevision()
			tt.change(r)
			Default(r)
			err := Validate(r)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestValidateControllerRevisionUpdate(t *testing.T) {
	old := validControllerRevision()
	renumbered := validControllerRevision()
	renumbered.Revision = 7
	renumbered.Annotations = map[string]string{AnnotationChangeCause: "back to 1.36"}
	if err := ValidateUpdate(old, renumbered); err != nil {
		t.Errorf("renumbering a revision: %v", err)
	}
	changed := validControllerRevision()
	changed.Data.Spec.Containers[0].Image = "busybox:1.37"
	if err := ValidateUpdate(old, changed); err == nil || !strings.Contains(err.Error(), "data: field is immutable") {
		t.Errorf("changing a revision's data: %v, want data: field is immutable", err)
	}
}

func TestControllerRevisionIsServed(t *testing.T) {
	k, ok := LookupKind("controllerrevisions")
	if !ok || k.Kind != "ControllerRevision" || k.APIVersion() != "apps/v1" || !k.Namespaced {
		t.Fatalf("controllerrevisions: %+v", k)
	}
	if got, ok := LookupKind("ControllerRevision"); !ok || got != k {
		t.Errorf("ControllerRevision does not name the kind")
	}
}

func TestRevisionHistoryLimitIsNotNegative(t *testing.T) {
	minus := int32(-1)
	ds := &DaemonSet{TypeMeta: TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}}
	ds.Namespace, ds.Name = "default", "agent"
	ds.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"app": "agent"}}
	ds.Spec.Template.Metadata.Labels = map[string]string{"app": "agent"}
	ds.Spec.Template.Spec.Containers = []Container{{Name: "c", Image: "busybox"}}
	ds.Spec.RevisionHistoryLimit = &minus
	sts := &StatefulSet{TypeMeta: TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}}
	sts.ObjectMeta, sts.Spec.Selector, sts.Spec.Template = ds.ObjectMeta, ds.Spec.Selector, ds.Spec.Template
	sts.Spec.RevisionHistoryLimit = &minus
	for _, o := range []Object{ds, sts} {
		Default(o)
		if err := Validate(o); err == nil || !strings.Contains(err.Error(), "spec.revisionHistoryLimit") {
			t.Errorf("%T with revisionHistoryLimit -1: %v", o, err)
		}
	}
}
