package apiserver

import (
	"context"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// A Service gets its cluster IP and, when it is a NodePort Service, its node ports
// from the server's allocators (services.go) as it is created; an update keeps what
// was allocated, takes the node ports of added ports and gives back those of dropped
// ones; a deleted Service gives back all it held.
func init() {
	registerStrategy("services", &strategy{
		PrepareForCreate: prepareForCreate(func(s *Server, ctx context.Context, svc *api.Service, u *undo) error {
			a := s.services
			if err := a.ready(ctx); err != nil {
				return err
			}
			if err := a.assignClusterIP(svc, u); err != nil {
				return err
			}
			return a.assignNodePorts(svc, u)
		}),
		PrepareForUpdate: prepareForUpdate(keepAllocated),
		BeginUpdate: beginUpdate(func(s *Server, ctx context.Context, _, next *api.Service, u *undo) error {
			if err := s.services.ready(ctx); err != nil {
				return err
			}
			return s.services.assignNodePorts(next, u)
		}),
		AfterUpdate: afterUpdate(func(s *Server, _ context.Context, before, after *api.Service) {
			s.services.releaseNodePorts(before, after)
		}),
		AfterDelete: afterDelete(func(s *Server, ctx context.Context, svc *api.Service) {
			if err := s.services.ready(ctx); err != nil {
				// Not restored yet: the restore reads the store, which no longer
				// holds this Service, so there is nothing to release.
				return
			}
			s.services.ips.Release(svc.Key())
			s.services.releaseNodePorts(svc, nil)
		}),
	})
}

// keepAllocated copies the addresses the server allocated from the stored Service
// into an update that leaves them out (a manifest applied again), as Kubernetes does:
// the cluster IP when next has none, and each node port of a port that keeps its
// name (or number) while next stays a NodePort Service.
func keepAllocated(o, n *api.Service) {
	if n.Spec.ClusterIP == "" {
		n.Spec.ClusterIP = o.Spec.ClusterIP
	}
	if n.Spec.Type != api.ServiceTypeNodePort {
		return
	}
	old := map[string]int32{}
	for i := range o.Spec.Ports {
		old[o.Spec.Ports[i].PortKey()] = o.Spec.Ports[i].NodePort
	}
	for i := range n.Spec.Ports {
		if p := &n.Spec.Ports[i]; p.NodePort == 0 {
			p.NodePort = old[p.PortKey()]
		}
	}
}
