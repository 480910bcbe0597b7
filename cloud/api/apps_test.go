package api

import (
	"strings"
	"testing"
)

func appsTestDeployment() *Deployment {
	d := &Deployment{TypeMeta: TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}}
	d.Name, d.Namespace = "web", "default"
	d.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	d.Spec.Template.Metadata.Labels = map[string]string{"app": "web"}
	d.Spec.Template.Spec.Containers = []Container{{Name: "c", Image: "nginx"}}
	return d
}

func TestDeploymentDefaultsAndValidation(t *testing.T) {
	d := appsTestDeployment()
	Default(d)
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != RollingUpdateStrategy || d.Spec.Strategy.RollingUpdate.MaxSurge.String() != "25%" ||
		*d.Spec.RevisionHistoryLimit != 10 || *d.Spec.ProgressDeadlineSeconds != 600 || d.Spec.Template.Spec.RestartPolicy != RestartAlways {
		t.Fatalf("defaults: %+v", d.Spec)
	}
	zero := FromInt(0)
	cases := []struct {
		name   string
		change func(*Deployment)
		want   string
	}{
		{"valid", func(*Deployment) {}, ""},
		{"no selector", func(d *Deployment) { d.Spec.Selector = nil }, "spec.selector: required"},
		{"mismatch", func(d *Deployment) { d.Spec.Template.Metadata.Labels = map[string]string{"app": "x"} }, "spec.template.metadata.labels: does not match spec.selector"},
		{"both zero", func(d *Deployment) {
			d.Spec.Strategy.RollingUpdate = &RollingUpdateDeployment{MaxSurge: &zero, MaxUnavailable: &zero}
		}, "spec.strategy.rollingUpdate.maxUnavailable"},
		{"bad percent", func(d *Deployment) { v := FromString("x%"); d.Spec.Strategy.RollingUpdate.MaxSurge = &v }, "spec.strategy.rollingUpdate.maxSurge"},
		{"bad type", func(d *Deployment) { d.Spec.Strategy.Type = "Fast" }, "spec.strategy.type"},
		{"no image", func(d *Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" }, "spec.template.spec.containers[0].image"},
	}
	for _, c := range cases {
		d := appsTestDeployment()
		Default(d)
		c.change(d)
		err := Validate(d)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	old, next := appsTestDeployment(), appsTestDeployment()
	next.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"app": "other"}}
	if err := ValidateUpdate(old, next); err == nil || !strings.Contains(err.Error(), "spec.selector") {
		t.Fatalf("selector change allowed: %v", err)
	}
}

func TestScaledValue(t *testing.T) {
	for _, c := range []struct {
		v    IntOrString
		up   bool
		want int
	}{{FromString("25%"), true, 1}, {FromString("25%"), false, 0}, {FromInt(2), false, 2}, {FromString("50%"), false, 2}} {
		if got, _ := ScaledValue(&c.v, 4-map[bool]int{true: 1, false: 0}[c.v.StrVal == "25%"], c.up); got != c.want {
			t.Errorf("%v up=%v: %d, want %d", c.v, c.up, got, c.want)
		}
	}
}
