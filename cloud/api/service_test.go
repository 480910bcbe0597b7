package api

import (
	"strings"
	"testing"
)

func testService() *Service {
	s := &Service{TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Service"}}
	s.Name, s.Namespace = "web", "default"
	s.Spec.Selector = map[string]string{"app": "web"}
	s.Spec.Ports = []ServicePort{{Port: 80, TargetPort: FromString("http")}}
	return s
}

func TestServiceDefaults(t *testing.T) {
	s := testService()
	s.Spec.Ports = append(s.Spec.Ports, ServicePort{Name: "b", Port: 8443})
	s.Spec.Ports[0].Name = "a"
	Default(s)
	if s.Spec.Type != ServiceTypeClusterIP || s.Spec.SessionAffinity != SessionAffinityNone {
		t.Fatalf("spec defaults: %+v", s.Spec)
	}
	if p := s.Spec.Ports[0]; p.Protocol != ProtocolTCP || p.TargetPort.String() != "http" {
		t.Fatalf("port 0: %+v", p)
	}
	if p := s.Spec.Ports[1]; p.TargetPort != FromInt(8443) {
		t.Fatalf("targetPort should default to port: %+v", p)
	}
}

func TestServiceValidation(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Service)
		want   string // a substring of the error; "" for valid
	}{
		{"valid", func(*Service) {}, ""},
		{"node port", func(s *Service) { s.Spec.Type = ServiceTypeNodePort; s.Spec.Ports[0].NodePort = 30080 }, ""},
		{"headless without ports", func(s *Service) { s.Spec.ClusterIP = ClusterIPNone; s.Spec.Ports = nil }, ""},
		{"given IP", func(s *Service) { s.Spec.ClusterIP = "10.96.0.10" }, ""},
		{"no ports", func(s *Service) { s.Spec.Ports = nil }, "spec.ports: required"},
		{"port 0", func(s *Service) { s.Spec.Ports[0].Port = 0 }, "spec.ports[0].port: 0 must be between 1 and 65535"},
		{"port too big", func(s *Service) { s.Spec.Ports[0].Port = 70000 }, "spec.ports[0].port: 70000"},
		{"bad type", func(s *Service) { s.Spec.Type = "LoadBalancer" }, "spec.type: \"LoadBalancer\" must be one of"},
		{"bad protocol", func(s *Service) { s.Spec.Ports[0].Protocol = "ICMP" }, "spec.ports[0].protocol"},
		{"names required", func(s *Service) { s.Spec.Ports = append(s.Spec.Ports, ServicePort{Port: 81}) }, "spec.ports[0].name: required"},
		{"names unique", func(s *Service) {
			s.Spec.Ports = []ServicePort{{Name: "a", Port: 80}, {Name: "a", Port: 81}}
		}, "spec.ports[1].name: \"a\" is used by another port"},
		{"port/protocol unique", func(s *Service) {
			s.Spec.Ports = []ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 80}}
		}, "spec.ports[1].port: 80/TCP is used by another port"},
		{"same port other protocol", func(s *Service) {
			s.Spec.Ports = []ServicePort{{Name: "a", Port: 53}, {Name: "b", Port: 53, Protocol: ProtocolUDP}}
		}, ""},
		{"bad port name", func(s *Service) { s.Spec.Ports[0].Name = "Web_1" }, "spec.ports[0].name"},
		{"bad target name", func(s *Service) { s.Spec.Ports[0].TargetPort = FromString("no--good") }, "spec.ports[0].targetPort"},
		{"node port on ClusterIP", func(s *Service) { s.Spec.Ports[0].NodePort = 30080 }, "spec.ports[0].nodePort: may only be set when spec.type is NodePort"},
		{"bad cluster IP", func(s *Service) { s.Spec.ClusterIP = "10.96.0" }, "spec.clusterIP"},
		{"IPv6 cluster IP", func(s *Service) { s.Spec.ClusterIP = "fd00::1" }, "spec.clusterIP"},
		{"headless NodePort", func(s *Service) { s.Spec.Type = ServiceTypeNodePort; s.Spec.ClusterIP = ClusterIPNone }, "spec.clusterIP: may not be \"None\""},
		{"bad selector", func(s *Service) { s.Spec.Selector = map[string]string{"app": "-x"} }, "spec.selector[app]"},
		{"bad affinity", func(s *Service) { s.Spec.SessionAffinity = "Sticky" }, "spec.sessionAffinity"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testService()
			c.change(s)
			Default(s)
			err := Validate(s)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestServiceClusterIPImmutable(t *testing.T) {
	old := testService()
	old.Spec.ClusterIP = "10.96.0.10"
	Default(old)
	next := DeepCopy(old).(*Service)
	next.Spec.Ports[0].Port = 8080
	if err := ValidateUpdate(old, next); err != nil {
		t.Fatalf("port change: %v", err)
	}
	next.Spec.ClusterIP = "10.96.0.11"
	if err := ValidateUpdate(old, next); err == nil || !strings.Contains(err.Error(), "spec.clusterIP: field is immutable") {
		t.Fatalf("clusterIP change: %v", err)
	}
}

func TestEndpointsValidation(t *testing.T) {
	ep := &Endpoints{TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Endpoints"}}
	ep.Name, ep.Namespace = "web", "default"
	ep.Subsets = []EndpointSubset{{
		Addresses:         []EndpointAddress{{IP: "10.244.0.5", NodeName: "n1"}},
		NotReadyAddresses: []EndpointAddress{{IP: "bad"}},
		Ports:             []EndpointPort{{Name: "a", Port: 80}, {Port: 0}},
	}}
	Default(ep)
	err := Validate(ep)
	for _, want := range []string{
		"subsets[0].notReadyAddresses[0].ip", "subsets[0].ports[1].name: required", "subsets[0].ports[1].port",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	if ep.Subsets[0].Ports[0].Protocol != ProtocolTCP {
		t.Errorf("protocol not defaulted")
	}
}

func TestServiceDecodes(t *testing.T) {
	k, ok := LookupKind("svc")
	if !ok || k.Kind != "Service" {
		t.Fatal("svc short name")
	}
	if k, ok := LookupKind("ep"); !ok || k.Kind != "Endpoints" {
		t.Fatal("ep short name")
	}
	o, err := DecodeObject(k, []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"w"},
		"spec":{"type":"NodePort","ports":[{"port":80,"targetPort":"http","nodePort":30001}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := o.(*Service)
	if s.Spec.Ports[0].TargetPort != FromString("http") || s.Spec.Ports[0].NodePort != 30001 {
		t.Fatalf("decoded %+v", s.Spec)
	}
}
