package api

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Service gives a set of pods one virtual IP and name. The API server allocates
// spec.clusterIP and the node ports; the endpoints controller keeps an Endpoints object
// of the same name listing the pods the selector picks.
type Service struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ServiceSpec   `json:"spec"`
	Status     ServiceStatus `json:"status,omitempty"`
}

// ServiceSpec is what a Service exposes and to which pods.
type ServiceSpec struct {
	// Type is ClusterIP (the default) or NodePort.
	Type string `json:"type,omitempty"`
	// Selector picks the pods behind the Service. If empty, the endpoints controller
	// leaves the Service's Endpoints alone (they are written by hand, or not at all).
	Selector map[string]string `json:"selector,omitempty"`
	Ports    []ServicePort     `json:"ports,omitempty"`
	// ClusterIP is the virtual IP. If empty on create, the API server picks one from
	// the service CIDR; ClusterIPNone makes the Service headless (no virtual IP, DNS
	// answers with the pod addresses). It may not change once set.
	ClusterIP string `json:"clusterIP,omitempty"`
	// SessionAffinity is None (the default) or ClientIP; it is accepted for
	// compatibility and not acted on.
	SessionAffinity string `json:"sessionAffinity,omitempty"`
}

// ServicePort is one port of a Service.
type ServicePort struct {
	// Name is required, and unique, when the Service has more than one port.
	Name string `json:"name,omitempty"`
	// Protocol is TCP (the default) or UDP.
	Protocol string `json:"protocol,omitempty"`
	// Port is the port on the virtual IP.
	Port int32 `json:"port"`
	// TargetPort is the pods' port: a number, or the name of a container port.
	// Default sets it to Port.
	TargetPort IntOrString `json:"targetPort,omitempty"`
	// NodePort is the port opened on every node for a NodePort Service. If zero on
	// create, the API server picks one from the node port range.
	NodePort int32 `json:"nodePort,omitempty"`
}

// ServiceStatus carries nothing cloudbox sets; LoadBalancer is there so that
// manifests exported from Kubernetes read without warnings.
type ServiceStatus struct {
	LoadBalancer *LoadBalancerStatus `json:"loadBalancer,omitempty"`
}

// LoadBalancerStatus lists a load balancer's addresses.
type LoadBalancerStatus struct {
	Ingress []LoadBalancerIngress `json:"ingress,omitempty"`
}

// LoadBalancerIngress is one address of a load balancer.
type LoadBalancerIngress struct {
	IP       string `json:"ip,omitempty"`
	Hostname string `json:"hostname,omitempty"`
}

// Service types, the headless cluster IP and session affinities.
const (
	ServiceTypeClusterIP = "ClusterIP"
	ServiceTypeNodePort  = "NodePort"

	// ClusterIPNone as spec.clusterIP makes a Service headless.
	ClusterIPNone = "None"

	SessionAffinityNone     = "None"
	SessionAffinityClientIP = "ClientIP"
)

// IsHeadless reports whether the Service has no virtual IP.
func (s *Service) IsHeadless() bool { return s.Spec.ClusterIP == ClusterIPNone }

// PortKey names a Service port for its node port owner and in messages: its name, or
// its number when it has none.
func (p *ServicePort) PortKey() string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Port))
}

// Endpoints lists the addresses behind a Service, grouped into subsets that share a
// set of ports.
type Endpoints struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Subsets    []EndpointSubset `json:"subsets,omitempty"`
}

// EndpointSubset is a group of addresses that serve the same ports.
type EndpointSubset struct {
	// Addresses are ready to take traffic.
	Addresses []EndpointAddress `json:"addresses,omitempty"`
	// NotReadyAddresses match the selector but are not ready (yet).
	NotReadyAddresses []EndpointAddress `json:"notReadyAddresses,omitempty"`
	Ports             []EndpointPort    `json:"ports,omitempty"`
}

// EndpointAddress is one backend: a pod's IP, its node and the pod itself.
type EndpointAddress struct {
	IP        string           `json:"ip"`
	NodeName  string           `json:"nodeName,omitempty"`
	TargetRef *ObjectReference `json:"targetRef,omitempty"`
}

// EndpointPort is a resolved port of a subset: Name is the Service port's name.
type EndpointPort struct {
	Name     string `json:"name,omitempty"`
	Port     int32  `json:"port"`
	Protocol string `json:"protocol,omitempty"`
}

func init() {
	Register(&KindInfo{Kind: "Service", Version: "v1", Resource: "services", Singular: "service", ShortNames: []string{"svc"}, Namespaced: true,
		New:            func() Object { return &Service{} },
		Default:        defaultService,
		Validate:       validateService,
		ValidateUpdate: validateServiceUpdate,
	})
	Register(&KindInfo{Kind: "Endpoints", Version: "v1", Resource: "endpoints", Singular: "endpoint", ShortNames: []string{"ep"}, Namespaced: true,
		New:      func() Object { return &Endpoints{} },
		Default:  defaultEndpoints,
		Validate: validateEndpoints,
	})
}

func defaultService(o Object) {
	s := &o.(*Service).Spec
	if s.Type == "" {
		s.Type = ServiceTypeClusterIP
	}
	if s.SessionAffinity == "" {
		s.SessionAffinity = SessionAffinityNone
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Protocol == "" {
			p.Protocol = ProtocolTCP
		}
		if !p.TargetPort.IsStr && p.TargetPort.IntVal == 0 {
			p.TargetPort = FromInt(p.Port)
		}
	}
}

func defaultEndpoints(o Object) {
	ep := o.(*Endpoints)
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if p := &ep.Subsets[i].Ports[j]; p.Protocol == "" {
				p.Protocol = ProtocolTCP
			}
		}
	}
}

func validateService(o Object) FieldErrors {
	svc := o.(*Service)
	s := &svc.Spec
	var errs FieldErrors
	switch s.Type {
	case ServiceTypeClusterIP, ServiceTypeNodePort:
	default:
		errs.add("spec.type", oneOf(s.Type, ServiceTypeClusterIP, ServiceTypeNodePort))
	}
	switch s.SessionAffinity {
	case SessionAffinityNone, SessionAffinityClientIP:
	default:
		errs.add("spec.sessionAffinity", oneOf(s.SessionAffinity, SessionAffinityNone, SessionAffinityClientIP))
	}
	errs = append(errs, validateLabels("spec.selector", s.Selector)...)
	switch ip := s.ClusterIP; {
	case ip == "":
	case ip == ClusterIPNone:
		if s.Type == ServiceTypeNodePort {
			errs.addf("spec.clusterIP", "may not be %q for a NodePort Service", ClusterIPNone)
		}
	default:
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
			errs.addf("spec.clusterIP", "%q must be an IPv4 address, %q or empty", ip, ClusterIPNone)
		}
	}
	if len(s.Ports) == 0 && !svc.IsHeadless() {
		errs.add("spec.ports", "required (only a headless Service may have none)")
	}
	names := map[string]bool{}
	ports := map[string]bool{}
	for i := range s.Ports {
		p := &s.Ports[i]
		pp := index("spec.ports", i)
		if p.Name == "" {
			if len(s.Ports) > 1 {
				errs.add(child(pp, "name"), "required when the Service has more than one port")
			}
		} else if msg := checkDNSLabel(p.Name); msg != "" {
			errs.add(child(pp, "name"), msg)
		} else if names[p.Name] {
			errs.addf(child(pp, "name"), "%q is used by another port", p.Name)
		}
		names[p.Name] = true
		errs.check(child(pp, "port"), checkPort(p.Port))
		switch p.Protocol {
		case ProtocolTCP, ProtocolUDP:
		default:
			errs.add(child(pp, "protocol"), oneOf(p.Protocol, ProtocolTCP, ProtocolUDP))
		}
		if pk := fmt.Sprintf("%d/%s", p.Port, p.Protocol); ports[pk] {
			errs.addf(child(pp, "port"), "%s is used by another port", pk)
		} else {
			ports[pk] = true
		}
		errs.check(child(pp, "targetPort"), checkPortOrName(p.TargetPort))
		if p.NodePort != 0 {
			if s.Type != ServiceTypeNodePort {
				errs.addf(child(pp, "nodePort"), "may only be set when spec.type is %s", ServiceTypeNodePort)
			} else {
				// The range is the API server's to check: it is configurable.
				errs.check(child(pp, "nodePort"), checkPort(p.NodePort))
			}
		}
	}
	return errs
}

func validateServiceUpdate(old, new Object) FieldErrors {
	o, n := old.(*Service), new.(*Service)
	var errs FieldErrors
	if o.Spec.ClusterIP != "" && n.Spec.ClusterIP != o.Spec.ClusterIP {
		errs.immutable("spec.clusterIP", o.Spec.ClusterIP)
	}
	return errs
}

func validateEndpoints(o Object) FieldErrors {
	ep := o.(*Endpoints)
	var errs FieldErrors
	for i, ss := range ep.Subsets {
		sp := index("subsets", i)
		checkAddrs := func(field string, addrs []EndpointAddress) {
			for j, a := range addrs {
				if _, err := netip.ParseAddr(a.IP); err != nil {
					errs.addf(child(index(field, j), "ip"), "%q must be an IP address", a.IP)
				}
				if a.NodeName != "" {
					errs.check(child(index(field, j), "nodeName"), checkDNSSubdomain(a.NodeName))
				}
			}
		}
		checkAddrs(child(sp, "addresses"), ss.Addresses)
		checkAddrs(child(sp, "notReadyAddresses"), ss.NotReadyAddresses)
		names := map[string]bool{}
		for j, p := range ss.Ports {
			pp := index(child(sp, "ports"), j)
			if p.Name == "" && len(ss.Ports) > 1 {
				errs.add(child(pp, "name"), "required when the subset has more than one port")
			} else if p.Name != "" {
				if msg := checkDNSLabel(p.Name); msg != "" {
					errs.add(child(pp, "name"), msg)
				} else if names[p.Name] {
					errs.addf(child(pp, "name"), "%q is used by another port", p.Name)
				}
			}
			names[p.Name] = true
			errs.check(child(pp, "port"), checkPort(p.Port))
			switch p.Protocol {
			case ProtocolTCP, ProtocolUDP:
			default:
				errs.add(child(pp, "protocol"), oneOf(p.Protocol, ProtocolTCP, ProtocolUDP))
			}
		}
	}
	return errs
}
