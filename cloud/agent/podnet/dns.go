package podnet

import (
	"context"
	"net"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/net/dns"
)

// DNSConfig configures RunDNS.
type DNSConfig struct {
	// Informers is the process's shared informer factory, started by its owner.
	// Required.
	Informers *client.Factory
	// Network is this node's pod network: the DNS answers on its gateway address.
	// Required.
	Network *Network
	// Logger may be nil.
	Logger *zap.Logger
}

// RunDNS answers cluster DNS from the Services and Endpoints caches on the bridge's
// gateway address, once the pod network is up, until ctx ends. A DNS that cannot
// start is logged, not fatal: pods then resolve only through the host.
func RunDNS(ctx context.Context, cfg DNSConfig) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	r := informerResolver{services: client.For[*api.Service](cfg.Informers), endpoints: client.For[*api.Endpoints](cfg.Informers)}
	if !client.WaitForSync(ctx, r.services.Informer, r.endpoints.Informer) {
		return
	}
	select {
	case <-cfg.Network.Ready():
	case <-ctx.Done():
		return
	}
	srv := &dns.Server{Addr: net.JoinHostPort(cfg.Network.Gateway().String(), "53"), Resolver: r, Logger: log}
	if err := srv.Start(ctx); err != nil {
		log.Error("cluster DNS did not start; pods resolve only through the host", zap.Error(err))
		return
	}
	<-srv.Done()
}

// informerResolver answers DNS from the Services and Endpoints caches.
type informerResolver struct {
	services  client.Typed[*api.Service]
	endpoints client.Typed[*api.Endpoints]
}

func (r informerResolver) LookupService(namespace, name string) (net.IP, bool, []net.IP, bool) {
	svc, ok := r.services.GetByName(namespace, name)
	if !ok {
		return nil, false, nil, false
	}
	if ip := net.ParseIP(svc.Spec.ClusterIP); ip != nil {
		return ip, false, nil, true
	}
	var ips []net.IP
	if e, ok := r.endpoints.GetByName(namespace, name); ok {
		for _, s := range e.Subsets {
			for _, a := range s.Addresses {
				if ip := net.ParseIP(a.IP); ip != nil {
					ips = append(ips, ip)
				}
			}
		}
	}
	return nil, true, ips, true
}
