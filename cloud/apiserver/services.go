package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/net/ipam"
	"github.com/cloudbox/cloudbox/store"
)

// DefaultServiceCIDR is the service CIDR when Config.ServiceCIDR is empty.
const DefaultServiceCIDR = "10.96.0.0/16"

// The "kubernetes" Service that names the API inside the cluster.
const (
	kubernetesServiceNamespace = "default"
	kubernetesServiceName      = "kubernetes"
)

// serviceAllocator hands out the cluster IPs and node ports of Services at the API
// edge. The allocators live in memory; the addresses are persisted in the Service
// objects, and the allocators are restored from the stored Services on first use, so
// that nothing is allocated before every stored address is known. It is safe for
// concurrent use.
type serviceAllocator struct {
	st  store.Store
	log *zap.Logger

	// err is a bad service CIDR or node port range: every Service write fails with it.
	err   error
	ips   *ipam.ServiceIPs
	ports *ipam.NodePorts

	mu       sync.Mutex
	restored bool
}

func newServiceAllocator(cfg Config, log *zap.Logger) *serviceAllocator {
	a := &serviceAllocator{st: cfg.Store, log: log}
	cidr := cfg.ServiceCIDR
	if cidr == "" {
		cidr = DefaultServiceCIDR
	}
	if a.ips, a.err = ipam.NewServiceIPs(cidr); a.err != nil {
		log.Error("Services cannot be created", zap.Error(a.err))
		return a
	}
	lo, hi := ipam.DefaultNodePortMin, ipam.DefaultNodePortMax
	if cfg.NodePortRange != "" {
		var err error
		if lo, hi, err = ParsePortRange(cfg.NodePortRange); err != nil {
			a.err = fmt.Errorf("node port range: %w", err)
			log.Error("Services cannot be created", zap.Error(a.err))
			return a
		}
	}
	if a.ports, a.err = ipam.NewNodePorts(lo, hi); a.err != nil {
		log.Error("Services cannot be created", zap.Error(a.err))
	}
	return a
}

// ParsePortRange reads "30000-32767".
func ParsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if ok {
		lo, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			hi, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%q is not a port range such as 30000-32767", s)
	}
	return lo, hi, nil
}

// ready restores the allocators from the stored Services the first time it is
// called; a failed restore is tried again by the next caller.
func (a *serviceAllocator) ready(ctx context.Context) error {
	if a.err != nil {
		return a.err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.restored {
		return nil
	}
	services, err := storeList[*api.Service](ctx, a.st)
	if err != nil {
		return fmt.Errorf("restoring service allocations: %w", err)
	}
	ips := map[string]net.IP{}
	ports := map[string]int{}
	for _, svc := range services {
		if !svc.IsHeadless() {
			ips[svc.Key()] = net.ParseIP(svc.Spec.ClusterIP)
		}
		for i := range svc.Spec.Ports {
			if p := &svc.Spec.Ports[i]; svc.Spec.Type == api.ServiceTypeNodePort {
				ports[nodePortOwner(svc, p)] = int(p.NodePort)
			}
		}
	}
	lostIPs := a.ips.Restore(ips)
	lostPorts := a.ports.Restore(ports)
	if len(lostIPs)+len(lostPorts) > 0 {
		// Two stored Services claiming one address, or addresses outside a
		// changed range: the objects keep them, and nothing guards them now.
		a.log.Warn("stored Services hold addresses the allocators could not restore",
			zap.Strings("clusterIPs", lostIPs), zap.Strings("nodePorts", lostPorts))
	}
	a.log.Info("service allocations restored", zap.Int("services", len(services)),
		zap.Int("clusterIPs", len(ips)), zap.Int("nodePorts", len(ports)))
	a.restored = true
	return nil
}

func nodePortOwner(svc *api.Service, p *api.ServicePort) string {
	return svc.Key() + ":" + p.PortKey()
}

// assignClusterIP gives a new Service its virtual IP: the one asked for, or a free one.
func (a *serviceAllocator) assignClusterIP(svc *api.Service, u *undo) error {
	if svc.IsHeadless() {
		return nil
	}
	owner := svc.Key()
	if held, ok := a.ips.Lookup(owner); ok {
		// The name is taken by a stored Service, or by a create in flight.
		return fmt.Errorf("services %q (holding %s): %w", svc.Name, held, store.ErrAlreadyExists)
	}
	if svc.Spec.ClusterIP == "" {
		ip, err := a.ips.Allocate(owner)
		if err != nil {
			return &api.FieldError{Field: "spec.clusterIP", Reason: "no address is left: " + err.Error()}
		}
		svc.Spec.ClusterIP = ip.String()
	} else if err := a.reserveIP(owner, svc.Spec.ClusterIP); err != nil {
		return err
	}
	*u = append(*u, func() { a.ips.Release(owner) })
	return nil
}

func (a *serviceAllocator) reserveIP(owner, s string) error {
	ip := net.ParseIP(s)
	const field = "spec.clusterIP"
	switch {
	case !a.ips.Contains(ip):
		return &api.FieldError{Field: field, Reason: fmt.Sprintf("%q is not in the service CIDR %s", s, a.ips.CIDR())}
	case ip.Equal(a.ips.KubernetesIP()) && owner != kubernetesServiceNamespace+"/"+kubernetesServiceName:
		return &api.FieldError{Field: field, Reason: fmt.Sprintf("%q is kept for the %s/%s Service", s, kubernetesServiceNamespace, kubernetesServiceName)}
	}
	err := a.ips.Reserve(owner, ip)
	switch {
	case errors.Is(err, ipam.ErrConflict):
		return &api.FieldError{Field: field, Reason: fmt.Sprintf("%q is already allocated", s)}
	case errors.Is(err, ipam.ErrInvalid):
		return &api.FieldError{Field: field, Reason: fmt.Sprintf("%q is not a usable address of the service CIDR %s", s, a.ips.CIDR())}
	}
	return err
}

// assignNodePorts gives every port of a NodePort Service its node port: the one asked
// for, or a free one. Owners that held another port before are moved, and u moves
// them back.
func (a *serviceAllocator) assignNodePorts(svc *api.Service, u *undo) error {
	if svc.Spec.Type != api.ServiceTypeNodePort {
		return nil
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		owner := nodePortOwner(svc, p)
		prev, held := a.ports.Lookup(owner)
		if p.NodePort == 0 {
			port, err := a.ports.Allocate(owner)
			if err != nil {
				return &api.FieldError{Field: fmt.Sprintf("spec.ports[%d].nodePort", i), Reason: "no node port is left: " + err.Error()}
			}
			p.NodePort = int32(port)
		} else if err := a.ports.Reserve(owner, int(p.NodePort)); err != nil {
			field := fmt.Sprintf("spec.ports[%d].nodePort", i)
			if errors.Is(err, ipam.ErrConflict) {
				return &api.FieldError{Field: field, Reason: fmt.Sprintf("%d is already allocated", p.NodePort)}
			}
			if errors.Is(err, ipam.ErrInvalid) {
				lo, hi := a.ports.Range()
				return &api.FieldError{Field: field, Reason: fmt.Sprintf("%d is outside the node port range %d-%d", p.NodePort, lo, hi)}
			}
			return err
		}
		switch {
		case !held:
			*u = append(*u, func() { a.ports.Release(owner) })
		case prev != int(p.NodePort):
			*u = append(*u, func() { _ = a.ports.Reserve(owner, prev) })
		}
	}
	return nil
}

// releaseNodePorts frees the node ports old held that next (nil for a deleted
// Service) no longer does.
func (a *serviceAllocator) releaseNodePorts(old, next *api.Service) {
	keep := map[string]bool{}
	if next != nil && next.Spec.Type == api.ServiceTypeNodePort {
		for i := range next.Spec.Ports {
			keep[nodePortOwner(next, &next.Spec.Ports[i])] = true
		}
	}
	if old.Spec.Type != api.ServiceTypeNodePort {
		return
	}
	for i := range old.Spec.Ports {
		if o := nodePortOwner(old, &old.Spec.Ports[i]); !keep[o] {
			a.ports.Release(o)
		}
	}
}

// EnsureKubernetesService creates the default/kubernetes Service, which holds the
// first address of the service CIDR, unless it exists. The server calls it once at
// start, after the default namespace exists.
func (s *Server) EnsureKubernetesService(ctx context.Context) error {
	k := api.KindOfType[*api.Service]()
	_, err := s.cfg.Store.Get(ctx, k, kubernetesServiceNamespace, kubernetesServiceName)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := s.services.ready(ctx); err != nil {
		return err
	}
	svc := newObject[*api.Service]()
	svc.Namespace, svc.Name = kubernetesServiceNamespace, kubernetesServiceName
	svc.Labels = map[string]string{"component": "apiserver", "provider": "kubernetes"}
	svc.Spec.ClusterIP = s.services.ips.KubernetesIP().String()
	svc.Spec.Ports = []api.ServicePort{{Name: "https", Port: 443, Protocol: api.ProtocolTCP}}
	if err := admit(svc); err != nil {
		return err
	}
	_, err = s.storeCreate(ctx, k, svc)
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating the %s/%s Service: %w", kubernetesServiceNamespace, kubernetesServiceName, err)
	}
	return nil
}
