package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	addTable(tableOf[*api.Service]{
		headers: []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"},
		row: func(s *api.Service) []string {
			return []string{s.Name, s.Spec.Type, orNone(s.Spec.ClusterIP), "<none>", servicePorts(s), age(s.CreationTimestamp)}
		},
		wide: []string{"SELECTOR"},
		wideRow: func(s *api.Service) []string {
			return []string{serviceSelector(s)}
		},
	})
	addTable(tableOf[*api.Endpoints]{
		headers: []string{"NAME", "ENDPOINTS", "AGE"},
		row: func(e *api.Endpoints) []string {
			return []string{e.Name, endpointsList(e, 3), age(e.CreationTimestamp)}
		},
	})
}

// servicePorts writes "80/TCP" or, with a node port, "80:30080/TCP", comma-separated.
func servicePorts(s *api.Service) string {
	if len(s.Spec.Ports) == 0 {
		return "<none>"
	}
	parts := make([]string, len(s.Spec.Ports))
	for i, p := range s.Spec.Ports {
		if p.NodePort != 0 {
			parts[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			parts[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(parts, ",")
}

func serviceSelector(s *api.Service) string {
	if len(s.Spec.Selector) == 0 {
		return "<none>"
	}
	return api.SelectorFromMap(s.Spec.Selector).String()
}

// endpointsList writes the ready "ip:port" pairs, at most max of them (0: all), with
// "+ N more..." for the rest.
func endpointsList(e *api.Endpoints, max int) string {
	var all []string
	for _, ss := range e.Subsets {
		for _, a := range ss.Addresses {
			if len(ss.Ports) == 0 {
				all = append(all, a.IP)
			}
			for _, p := range ss.Ports {
				all = append(all, fmt.Sprintf("%s:%d", a.IP, p.Port))
			}
		}
	}
	if len(all) == 0 {
		return "<none>"
	}
	if max > 0 && len(all) > max {
		return strings.Join(all[:max], ",") + fmt.Sprintf(" + %d more...", len(all)-max)
	}
	return strings.Join(all, ",")
}

func describeService(w io.Writer, s *api.Service) {
	field(w, "Selector", serviceSelector(s))
	field(w, "Type", s.Spec.Type)
	field(w, "IP", orNone(s.Spec.ClusterIP))
	field(w, "Session Affinity", s.Spec.SessionAffinity)
	for _, p := range s.Spec.Ports {
		name := orNone(p.Name)
		field(w, "Port", fmt.Sprintf("%s  %d/%s", name, p.Port, p.Protocol))
		field(w, "TargetPort", fmt.Sprintf("%s/%s", p.TargetPort.String(), p.Protocol))
		if p.NodePort != 0 {
			field(w, "NodePort", fmt.Sprintf("%s  %d/%s", name, p.NodePort, p.Protocol))
		}
	}
}

// describeServiceEndpoints writes the Endpoints of the Service o (nothing for other
// kinds): ready addresses, then those not ready.
func describeServiceEndpoints(ctx context.Context, w io.Writer, cl *client.Client, o api.Object) {
	s, ok := o.(*api.Service)
	if !ok {
		return
	}
	e, err := client.Get[*api.Endpoints](ctx, cl, s.Namespace, s.Name)
	if err != nil {
		field(w, "Endpoints", "<none>")
		return
	}
	field(w, "Endpoints", endpointsList(e, 0))
	var notReady []string
	for _, ss := range e.Subsets {
		for _, a := range ss.NotReadyAddresses {
			notReady = append(notReady, a.IP)
		}
	}
	if len(notReady) > 0 {
		field(w, "Not Ready", strings.Join(notReady, ","))
	}
}
