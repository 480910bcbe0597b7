package proxy

import (
	"net"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	ep := func(ip string, ports map[string]int) Endpoint { return Endpoint{IP: net.ParseIP(ip), Ports: ports} }
	tests := []struct {
		name     string
		svc      Service
		want     []string // substrings of the nat rules
		wantNot  []string
		filter   []string // substrings of the filter rules
		sepCount int
	}{
		{
			name: "named target port per endpoint",
			svc: Service{Namespace: "a", Name: "s", ClusterIP: net.ParseIP("10.96.0.1"),
				Ports:     []ServicePort{{Name: "web", Port: 80, TargetPort: 8080}},
				Endpoints: []Endpoint{ep("10.244.0.3", map[string]int{"web": 9000}), ep("10.244.0.2", nil)}},
			want: []string{"DNAT --to-destination 10.244.0.3:9000", "DNAT --to-destination 10.244.0.2:8080",
				"-d 10.96.0.1/32 -p tcp", "--probability 0.5000000000"},
			sepCount: 2,
		},
		{
			name: "target port defaults to port; three endpoints",
			svc: Service{Namespace: "a", Name: "s", ClusterIP: net.ParseIP("10.96.0.1"),
				Ports:     []ServicePort{{Protocol: UDP, Port: 53}},
				Endpoints: []Endpoint{ep("10.244.0.1", nil), ep("10.244.0.2", nil), ep("10.244.0.3", nil), ep("10.244.0.3", nil)}},
			want:     []string{"-p udp", "10.244.0.1:53", "--probability 0.3333333333", "--probability 0.5000000000"},
			sepCount: 3,
		},
		{
			name: "no endpoints rejects in filter",
			svc: Service{Namespace: "a", Name: "s", ClusterIP: net.ParseIP("10.96.0.1"),
				Ports: []ServicePort{{Port: 80, NodePort: 30001}}},
			wantNot: []string{"CLOUDBOX-SVC-"},
			filter:  []string{"-d 10.96.0.1/32 -p tcp", "--dport 30001 -j REJECT"},
		},
		{
			name: "headless service with IPv6 endpoint only",
			svc: Service{Namespace: "a", Name: "s",
				Ports:     []ServicePort{{Port: 80}},
				Endpoints: []Endpoint{ep("fd00::1", nil)}},
			wantNot: []string{"CLOUDBOX-SVC-", "DNAT"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := build([]Service{tc.svc}, nil, defaultMasqueradeM)
			nat, filter := d.nat.String(), d.filter.String()
			for _, w := range tc.want {
				if !strings.Contains(nat, w) {
					t.Errorf("nat rules lack %q:\n%s", w, nat)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(nat, w) {
					t.Errorf("nat rules have %q:\n%s", w, nat)
				}
			}
			for _, w := range tc.filter {
				if !strings.Contains(filter, w) {
					t.Errorf("filter rules lack %q:\n%s", w, filter)
				}
			}
			seps := 0
			for _, c := range d.natChains {
				if len(c) > 28 {
					t.Errorf("chain name %q longer than 28", c)
				}
				if strings.HasPrefix(c, prefixSep) {
					seps++
				}
			}
			if seps != tc.sepCount {
				t.Errorf("%d SEP chains, want %d", seps, tc.sepCount)
			}
		})
	}
}
