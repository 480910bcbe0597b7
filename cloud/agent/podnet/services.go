package podnet

import (
	"context"
	"net"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/net/dns"
	"github.com/cloudbox/cloudbox/net/proxy"
)

// RunServices keeps this node's Service rules (cluster IPs and node ports) in step
// with the Services and Endpoints in the API until ctx ends — every change triggers
// one full sync, and changes that arrive during a sync are folded into the next — and,
// once the pod network is up, answers cluster DNS on the bridge address.
func RunServices(ctx context.Context, cl *client.Client, network *Network, log *zap.Logger) {
	if log == nil {
		log = zap.NewNop()
	}
	svcKind, _ := api.LookupKind("services")
	epKind, _ := api.LookupKind("endpoints")
	services := client.NewInformer(cl, svcKind, "", client.ListOptions{}, log)
	endpoints := client.NewInformer(cl, epKind, "", client.ListOptions{}, log)
	changed := make(chan struct{}, 1)
	poke := func(api.Object) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	for _, inf := range []*client.Informer{services, endpoints} {
		inf.AddHandler(client.Handler{OnAdd: poke, OnUpdate: func(_, o api.Object) { poke(o) }, OnDelete: poke})
		go inf.Run(ctx)
	}
	for _, inf := range []*client.Informer{services, endpoints} {
		select {
		case <-inf.Synced():
		case <-ctx.Done():
			return
		}
	}
	go serveDNS(ctx, network, informerResolver{services, endpoints}, log)
	p := &proxy.Proxier{}
	poke(nil)
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		if err := p.Sync(desiredServices(services, endpoints), nil); err != nil {
			log.Warn("syncing service rules failed; retrying on the next change", zap.Error(err))
			p.Invalidate()
		}
	}
}

// desiredServices turns the cached Services and Endpoints into the proxy's input.
func desiredServices(services, endpoints *client.Informer) []proxy.Service {
	var out []proxy.Service
	for _, o := range services.List() {
		svc := o.(*api.Service)
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
		if e := endpoints.Get(svc.Key()); e != nil {
			for _, subset := range e.(*api.Endpoints).Subsets {
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

// serveDNS runs the cluster DNS on the gateway address once the network is up.
func serveDNS(ctx context.Context, network *Network, r dns.Resolver, log *zap.Logger) {
	select {
	case <-network.Ready():
	case <-ctx.Done():
		return
	}
	srv := &dns.Server{Addr: net.JoinHostPort(network.Gateway().String(), "53"), Resolver: r, Logger: log.Named("dns")}
	if err := srv.Start(ctx); err != nil {
		log.Error("cluster DNS did not start; pods resolve only through the host", zap.Error(err))
	}
}

// informerResolver answers DNS from the Services and Endpoints caches.
type informerResolver struct{ services, endpoints *client.Informer }

func (r informerResolver) LookupService(namespace, name string) (net.IP, bool, []net.IP, bool) {
	o := r.services.Get(namespace + "/" + name)
	if o == nil {
		return nil, false, nil, false
	}
	if ip := net.ParseIP(o.(*api.Service).Spec.ClusterIP); ip != nil {
		return ip, false, nil, true
	}
	var ips []net.IP
	if e := r.endpoints.Get(namespace + "/" + name); e != nil {
		for _, s := range e.(*api.Endpoints).Subsets {
			for _, a := range s.Addresses {
				if ip := net.ParseIP(a.IP); ip != nil {
					ips = append(ips, ip)
				}
			}
		}
	}
	return nil, true, ips, true
}
