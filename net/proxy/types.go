// Package proxy programs cloudbox Services into iptables, the way kube-proxy's
// iptables mode does.
//
// The Proxier owns these chains and nothing else:
//
//	nat     CLOUDBOX-SERVICES         jumped from PREROUTING and OUTPUT
//	nat     CLOUDBOX-HOSTPORTS        jumped from PREROUTING and OUTPUT (local destinations)
//	nat     CLOUDBOX-POSTROUTING-SVC  jumped from POSTROUTING; masquerades marked packets
//	nat     CLOUDBOX-MARK-MASQ        sets the masquerade mark
//	nat     CLOUDBOX-NODEPORTS        last rule of CLOUDBOX-SERVICES, local destinations only
//	nat     CLOUDBOX-SVC-<hash>       one per service port: picks an endpoint at random
//	nat     CLOUDBOX-SEP-<hash>       one per service port endpoint: DNAT to it
//	filter  CLOUDBOX-SVC-REJECT       jumped from INPUT, FORWARD and OUTPUT; rejects
//	                                  traffic to service ports without endpoints
//	filter  CLOUDBOX-ISOLATION        jumped from the firewall's CLOUDBOX-FORWARD (which
//	                                  creates it): sends traffic to isolated pods to
//	filter  CLOUDBOX-ISO-<hash>       one per isolated namespace: lets its own pods in
//
// CLOUDBOX-ISOLATION belongs to the firewall (it must come before the forward
// ACCEPTs, whatever order the two packages start in); the proxy only fills it.
//
// Every Sync writes the complete desired state of these chains in one
// iptables-restore --noflush run, one COMMIT per table, so each table changes
// atomically. Other CLOUDBOX-* chains (the firewall's) are never touched.
package proxy

import (
	"net"
	"strings"
)

// Protocol is a transport protocol of a service port: TCP or UDP.
type Protocol string

// Protocols a ServicePort or HostPort may carry. An empty Protocol means TCP.
const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// iptables returns the protocol as iptables' -p wants it.
func (p Protocol) iptables() string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(string(p))
}

// Service is one Service as the proxy sees it: its virtual IP, its ports and
// its ready endpoints.
type Service struct {
	Namespace string
	Name      string
	// ClusterIP is the virtual IP. If nil or unspecified (a headless
	// Service), no cluster IP rules are written; node ports still are.
	// Only IPv4 is programmed.
	ClusterIP net.IP
	Ports     []ServicePort
	// Endpoints are the ready endpoints. If empty, traffic to the
	// Service's ports is rejected.
	Endpoints []Endpoint
}

// ServicePort is one port of a Service.
type ServicePort struct {
	// Name is the port's name; "" for the single unnamed port.
	Name     string
	Protocol Protocol
	// Port is the port on the ClusterIP.
	Port int
	// NodePort, if not zero, is opened on every local address of the node.
	NodePort int
	// TargetPort is the endpoints' port when an Endpoint has no entry for
	// Name in its Ports. If zero, Port is used.
	TargetPort int
}

// Endpoint is one ready backend of a Service.
type Endpoint struct {
	IP net.IP
	// Ports maps a service port name ("" for unnamed) to the port on this
	// endpoint, which is how named target ports resolve per pod. May be nil.
	Ports map[string]int
}

// HostPort is a container's hostPort: traffic to a local address of the
// node on HostPort goes to PodIP:PodPort.
type HostPort struct {
	Protocol Protocol
	// HostIP restricts the port to one local address. If nil or
	// unspecified, every local address.
	HostIP   net.IP
	HostPort int
	PodIP    net.IP
	PodPort  int
}

// IsolatedNamespace is a namespace whose pods accept new connections only
// from pods of the same namespace. The node's own traffic (probes) never
// passes FORWARD, so it is always let in; replies to connections the
// isolated pods open are let in too.
type IsolatedNamespace struct {
	Name string
	// PodIPs are the addresses of every pod of the namespace in the cluster:
	// the ones to guard and the ones let in.
	PodIPs []net.IP
}

// State is everything one Sync programs.
type State struct {
	Services  []Service
	HostPorts []HostPort
	Isolated  []IsolatedNamespace
}

// targetPort resolves the port an endpoint serves sp on.
func (ep Endpoint) targetPort(sp ServicePort) int {
	if p, ok := ep.Ports[sp.Name]; ok && p > 0 {
		return p
	}
	if sp.TargetPort > 0 {
		return sp.TargetPort
	}
	return sp.Port
}
