package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestServicePrinters(t *testing.T) {
	s := &api.Service{Spec: api.ServiceSpec{Type: "NodePort", ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
		Ports: []api.ServicePort{{Name: "http", Port: 80, Protocol: "TCP", NodePort: 30080, TargetPort: api.FromString("http")}, {Name: "dns", Port: 53, Protocol: "UDP"}}}}
	s.Name = "web"
	row := tables["services"].row(s)
	if got := strings.Join(row[:5], " "); got != "web NodePort 10.96.0.10 <none> 80:30080/TCP,53/UDP" {
		t.Fatalf("row %q", got)
	}
	if w := tables["services"].wideRow(s); w[0] != "app=web" {
		t.Fatalf("wide %q", w)
	}
	ep := &api.Endpoints{Subsets: []api.EndpointSubset{{
		Addresses: []api.EndpointAddress{{IP: "10.244.0.5"}, {IP: "10.244.0.6"}}, Ports: []api.EndpointPort{{Port: 8080}}}}}
	if got := tables["endpoints"].row(ep)[1]; got != "10.244.0.5:8080,10.244.0.6:8080" {
		t.Fatalf("endpoints %q", got)
	}
	var b bytes.Buffer
	describeService(&b, s)
	for _, want := range []string{"NodePort", "10.96.0.10", "30080/TCP", "app=web", "http/TCP"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, b.String())
		}
	}
}
