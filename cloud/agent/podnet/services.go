package podnet

import (
	"context"
	"net"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/net/proxy"
)

// RunServiceProxy keeps this node's Service rules (cluster IPs and node ports) in
// step with the Services and Endpoints in the API until ctx ends: every change
// triggers one full sync, and changes that arrive during a sync are folded into the
// next one.
func RunServiceProxy(ctx context.Context, cl *client.Client, log *zap.Logger) {
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
