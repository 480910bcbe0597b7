package podnet

import (
	"context"
	"net"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/net/proxy"
)

// LabelIsolation on a namespace, "true", isolates its pods: they accept new
// connections only from pods of the same namespace (and from the node itself).
// "false" opts a namespace out when ServicesConfig.IsolateNamespaces makes
// isolation the default.
const LabelIsolation = "cloudbox.io/network-isolation"

// ServicesConfig configures RunServices.
type ServicesConfig struct {
	// Informers is the process's shared informer factory, started by its owner.
	// Its pods must be every pod, not only this node's: an isolated namespace lets
	// in its pods from any node. Required.
	Informers *client.Factory
	// Network is this node's pod network. Required.
	Network *Network
	// NodeName is this node: only its pods' hostPorts are programmed here.
	NodeName string
	// IsolateNamespaces isolates every namespace but kube-system unless it is
	// labelled LabelIsolation=false.
	IsolateNamespaces bool
	// Logger may be nil.
	Logger *zap.Logger
}

// RunServices keeps this node's Service rules (cluster IPs and node ports), its
// pods' hostPorts and namespace isolation in step with the API until ctx ends:
// every change triggers one full sync, and changes that arrive during a sync are
// folded into the next.
func RunServices(ctx context.Context, cfg ServicesConfig) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	network := cfg.Network
	services := client.For[*api.Service](cfg.Informers)
	endpoints := client.For[*api.Endpoints](cfg.Informers)
	pods := client.For[*api.Pod](cfg.Informers)
	namespaces := client.For[*api.Namespace](cfg.Informers)
	informers := []*client.Informer{services.Informer, endpoints.Informer, pods.Informer, namespaces.Informer}
	changed := make(chan struct{}, 1)
	poke := func(api.Object) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	for _, inf := range informers {
		inf.AddHandler(client.Handler{OnAdd: poke, OnUpdate: func(_, o api.Object) { poke(o) }, OnDelete: poke})
	}
	if !client.WaitForSync(ctx, informers...) {
		return
	}
	p := &proxy.Proxier{}
	poke(nil)
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		st := proxy.State{
			Services:  desiredServices(services, endpoints),
			HostPorts: desiredHostPorts(pods, network, cfg.NodeName),
			Isolated:  desiredIsolation(pods, namespaces, network, cfg.NodeName, cfg.IsolateNamespaces),
		}
		if _, err := p.SyncState(st); err != nil {
			log.Warn("syncing service rules failed; retrying on the next change", zap.Error(err))
			p.Invalidate()
		} else if first {
			// Tests wait for this line: from here the rules are the agent's.
			log.Info("service rules synced", zap.Int("services", len(st.Services)), zap.Int("hostPorts", len(st.HostPorts)))
			first = false
		}
	}
}

// podAddr is the pod's address: the node's own record for its pods (known as
// soon as the sandbox is attached), else status.podIP. Nil for pods on the
// host's network and for pods that have ended.
func podAddr(p *api.Pod, network *Network, nodeName string) net.IP {
	if p.Spec.HostNetwork || p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed {
		return nil
	}
	if p.Spec.NodeName == nodeName && network != nil {
		if ip := network.PodIP(p.UID); ip != "" {
			return net.ParseIP(ip)
		}
	}
	return net.ParseIP(p.Status.PodIP)
}

// desiredHostPorts lists the hostPorts of this node's pods.
func desiredHostPorts(pods client.Typed[*api.Pod], network *Network, nodeName string) []proxy.HostPort {
	var out []proxy.HostPort
	for _, p := range pods.OnNode(nodeName) {
		ip := podAddr(p, network, nodeName)
		if ip == nil {
			continue
		}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.HostPort <= 0 {
					continue
				}
				out = append(out, proxy.HostPort{Protocol: proxy.Protocol(cp.Protocol), HostIP: net.ParseIP(cp.HostIP),
					HostPort: int(cp.HostPort), PodIP: ip, PodPort: int(cp.ContainerPort)})
			}
		}
	}
	return out
}

// isolated reports whether ns's pods are isolated.
func isolated(ns *api.Namespace, byDefault bool) bool {
	switch ns.Labels[LabelIsolation] {
	case "true":
		return true
	case "false":
		return false
	}
	return byDefault && ns.Name != "kube-system"
}

// desiredIsolation lists the isolated namespaces with their pods' addresses.
func desiredIsolation(pods client.Typed[*api.Pod], namespaces client.Typed[*api.Namespace], network *Network, nodeName string, byDefault bool) []proxy.IsolatedNamespace {
	iso := map[string]*proxy.IsolatedNamespace{}
	for _, ns := range namespaces.List() {
		if isolated(ns, byDefault) {
			iso[ns.Name] = &proxy.IsolatedNamespace{Name: ns.Name}
		}
	}
	if len(iso) == 0 {
		return nil
	}
	for ns, n := range iso {
		for _, p := range pods.InNamespace(ns) {
			if ip := podAddr(p, network, nodeName); ip != nil {
				n.PodIPs = append(n.PodIPs, ip)
			}
		}
	}
	out := make([]proxy.IsolatedNamespace, 0, len(iso))
	for _, n := range iso {
		out = append(out, *n)
	}
	return out
}

// desiredServices turns the cached Services and Endpoints into the proxy's input.
func desiredServices(services client.Typed[*api.Service], endpoints client.Typed[*api.Endpoints]) []proxy.Service {
	var out []proxy.Service
	for _, svc := range services.List() {
		ip := net.ParseIP(svc.Spec.ClusterIP)
		if ip == nil {
			continue // headless: DNS answers with the pods themselves
		}
		ps := proxy.Service{Namespace: svc.Namespace, Name: svc.Name, ClusterIP: ip}
		for _, sp := range svc.Spec.Ports {
			port := proxy.ServicePort{Name: sp.Name, Protocol: proxy.Protocol(sp.Protocol), Port: int(sp.Port), NodePort: int(sp.NodePort)}
			if !sp.TargetPort.IsStr {
				port.TargetPort = int(sp.TargetPort.IntVal)
			}
			ps.Ports = append(ps.Ports, port)
		}
		if e, ok := endpoints.Get(svc.Key()); ok {
			for _, subset := range e.Subsets {
				ports := map[string]int{}
				for _, p := range subset.Ports {
					ports[p.Name] = int(p.Port)
				}
				for _, a := range subset.Addresses {
					if ip := net.ParseIP(a.IP); ip != nil {
						ps.Endpoints = append(ps.Endpoints, proxy.Endpoint{IP: ip, Ports: ports})
					}
				}
			}
		}
		out = append(out, ps)
	}
	return out
}
