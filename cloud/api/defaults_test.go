package api

import (
	"reflect"
	"testing"
)

func int64p(n int64) *int64 { return &n }
func int32p(n int32) *int32 { return &n }

func TestDefaultPod(t *testing.T) {
	p := &Pod{
		ObjectMeta: ObjectMeta{Name: "web", Namespace: "default"},
		Spec: PodSpec{
			InitContainers: []Container{{Name: "init", Image: "busybox@sha256:0123"}},
			Containers: []Container{{
				Name:  "web",
				Image: "busybox",
				Ports: []ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: ProtocolUDP}},
				Resources: Resources{
					Limits:   ResourceList{"cpu": MustParseQuantity("1"), "memory": MustParseQuantity("128Mi")},
					Requests: ResourceList{"cpu": MustParseQuantity("250m")},
				},
				LivenessProbe:  &Probe{Handler: Handler{HTTPGet: &HTTPGetAction{Port: FromInt(80)}}},
				ReadinessProbe: &Probe{Handler: Handler{TCPSocket: &TCPSocketAction{Port: FromInt(80)}}, PeriodSeconds: 2, FailureThreshold: 1},
				Env:            []EnvVar{{Name: "POD", ValueFrom: &EnvVarSource{FieldRef: &ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			}},
			Volumes: []Volume{{Name: "cfg", ConfigMap: &ConfigMapVolume{Name: "cfg"}}},
		},
	}
	Default(p)

	if p.APIVersion != "v1" || p.Kind != "Pod" {
		t.Errorf("TypeMeta = %+v", p.TypeMeta)
	}
	s := p.Spec
	if s.RestartPolicy != RestartAlways || s.DNSPolicy != DNSClusterFirst || s.SchedulerName != "default-scheduler" {
		t.Errorf("restartPolicy %q, dnsPolicy %q, schedulerName %q", s.RestartPolicy, s.DNSPolicy, s.SchedulerName)
	}
	if g := s.TerminationGracePeriodSeconds; g == nil || *g != 30 {
		t.Errorf("terminationGracePeriodSeconds = %v", g)
	}
	c := s.Containers[0]
	if c.ImagePullPolicy != PullAlways {
		t.Errorf("imagePullPolicy of an untagged image = %q, want Always", c.ImagePullPolicy)
	}
	if s.InitContainers[0].ImagePullPolicy != PullIfNotPresent {
		t.Errorf("imagePullPolicy of a digest = %q, want IfNotPresent", s.InitContainers[0].ImagePullPolicy)
	}
	if c.TerminationMessagePath != "/dev/termination-log" || c.TerminationMessagePolicy != "File" {
		t.Errorf("termination message %q %q", c.TerminationMessagePath, c.TerminationMessagePolicy)
	}
	if c.Ports[0].Protocol != ProtocolTCP || c.Ports[1].Protocol != ProtocolUDP {
		t.Errorf("ports = %+v", c.Ports)
	}
	wantReq := ResourceList{"cpu": MustParseQuantity("250m"), "memory": MustParseQuantity("128Mi")}
	if !reflect.DeepEqual(c.Resources.Requests, wantReq) {
		t.Errorf("requests = %v, want %v (the request kept, the missing one from the limit)", c.Resources.Requests, wantReq)
	}
	wantLive := &Probe{Handler: Handler{HTTPGet: &HTTPGetAction{Port: FromInt(80), Path: "/", Scheme: "HTTP"}},
		TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
	if !reflect.DeepEqual(c.LivenessProbe, wantLive) {
		t.Errorf("liveness probe = %+v", c.LivenessProbe)
	}
	r := c.ReadinessProbe
	if r.PeriodSeconds != 2 || r.FailureThreshold != 1 || r.TimeoutSeconds != 1 || r.SuccessThreshold != 1 {
		t.Errorf("readiness probe = %+v (set values must stay)", r)
	}
	if c.Env[0].ValueFrom.FieldRef.APIVersion != "v1" {
		t.Errorf("fieldRef apiVersion = %q", c.Env[0].ValueFrom.FieldRef.APIVersion)
	}
	if m := s.Volumes[0].ConfigMap.DefaultMode; m == nil || *m != 0o644 {
		t.Errorf("configMap defaultMode = %v", m)
	}
	if err := Validate(p); err != nil {
		t.Errorf("defaulted pod does not validate: %v", err)
	}

	// Defaulting twice changes nothing.
	again := DeepCopy(p).(*Pod)
	Default(again)
	if !reflect.DeepEqual(again, p) {
		t.Errorf("second Default changed the pod:\n%+v\n%+v", again, p)
	}
}

func TestDefaultPodKeepsSetValues(t *testing.T) {
	p := &Pod{Spec: PodSpec{
		RestartPolicy: RestartNever, DNSPolicy: DNSDefault, SchedulerName: "mine",
		TerminationGracePeriodSeconds: int64p(0),
		Containers: []Container{{Name: "a", Image: "busybox:latest", ImagePullPolicy: PullNever,
			TerminationMessagePath: "/tmp/x"}},
	}}
	Default(p)
	s := p.Spec
	if s.RestartPolicy != RestartNever || s.DNSPolicy != DNSDefault || s.SchedulerName != "mine" || *s.TerminationGracePeriodSeconds != 0 {
		t.Errorf("set values changed: %+v", s)
	}
	if c := s.Containers[0]; c.ImagePullPolicy != PullNever || c.TerminationMessagePath != "/tmp/x" {
		t.Errorf("set container values changed: %+v", c)
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	tests := []struct{ image, want string }{
		{"busybox", PullAlways},
		{"busybox:latest", PullAlways},
		{"busybox:1.36", PullIfNotPresent},
		{"docker.io/library/busybox:1.36", PullIfNotPresent},
		{"localhost:5000/busybox", PullAlways},
		{"localhost:5000/busybox:v1", PullIfNotPresent},
		{"localhost:5000/busybox:latest", PullAlways},
		{"busybox@sha256:abcd", PullIfNotPresent},
		{"busybox:latest@sha256:abcd", PullAlways},
		{"busybox:1@sha256:abcd", PullIfNotPresent},
		{"", PullAlways},
	}
	for _, tt := range tests {
		if got := defaultPullPolicy(tt.image); got != tt.want {
			t.Errorf("defaultPullPolicy(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}

func TestDefaultNamespaceAndTypeMeta(t *testing.T) {
	ns := &Namespace{ObjectMeta: ObjectMeta{Name: "a"}}
	Default(ns)
	if ns.Status.Phase != NamespaceActive || ns.APIVersion != "v1" || ns.Kind != "Namespace" {
		t.Errorf("namespace = %+v", ns)
	}
	ns = &Namespace{Status: NamespaceStatus{Phase: NamespaceTerminating}}
	Default(ns)
	if ns.Status.Phase != NamespaceTerminating {
		t.Errorf("phase = %q, want Terminating kept", ns.Status.Phase)
	}

	n := &Node{}
	Default(n)
	if n.APIVersion != "v1" || n.Kind != "Node" {
		t.Errorf("node TypeMeta = %+v", n.TypeMeta)
	}

	d := &testDeployment{TypeMeta: TypeMeta{APIVersion: "apps/v1beta1"}}
	Default(d)
	if d.APIVersion != "apps/v1" || d.Kind != "TestDeployment" {
		t.Errorf("alias TypeMeta = %+v, want apps/v1 TestDeployment", d.TypeMeta)
	}

	// A wrong kind is left for Validate to report rather than papered over.
	p := &Pod{TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Node"}}
	Default(p)
	if p.Kind != "Node" {
		t.Errorf("kind = %q, want the wrong kind kept", p.Kind)
	}

	// nil and typed nil do not panic.
	Default(nil)
	Default((*Pod)(nil))
}
