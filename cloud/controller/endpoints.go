package controller

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	Register("endpoints", func(d Deps) Runner { return NewEndpointsController(d) })
}

// EndpointsController keeps, for every Service with a selector, an Endpoints object of
// the same name that lists the pods the selector matches and that have an address:
// ready pods under addresses, the others under notReadyAddresses, grouped by the
// ports their containers resolve the Service's target ports to. The Endpoints is owned
// by its Service, so the garbage collector removes it with the Service.
type EndpointsController struct {
	base
	services  client.Typed[*api.Service]
	endpoints client.Typed[*api.Endpoints]
	pods      client.Typed[*api.Pod]
}

// NewEndpointsController returns a controller reading Services, Endpoints and pods
// from d's factory.
func NewEndpointsController(d Deps) *EndpointsController {
	c := &EndpointsController{base: newBase(d, "", 4),
		services: client.For[*api.Service](d.Factory), endpoints: client.For[*api.Endpoints](d.Factory), pods: client.For[*api.Pod](d.Factory)}
	c.services.AddHandler(onChange(func(svc *api.Service) { c.enqueue(svc) }))
	// A changed or deleted Endpoints is put back as the Service wants it.
	c.endpoints.AddHandler(client.TypedHandler[*api.Endpoints]{
		OnUpdate: func(_, ep *api.Endpoints) { c.enqueue(ep) },
		OnDelete: func(ep *api.Endpoints) { c.enqueue(ep) },
	})
	c.pods.AddHandler(client.TypedHandler[*api.Pod]{
		OnAdd: c.enqueueForPod,
		OnUpdate: func(old, p *api.Pod) {
			c.enqueueForPod(p)
			if !reflect.DeepEqual(old.Labels, p.Labels) {
				c.enqueueForPod(old) // Services that matched the old labels lose it
			}
		},
		OnDelete: c.enqueueForPod,
	})
	return c
}

// Run reconciles until ctx is cancelled.
func (c *EndpointsController) Run(ctx context.Context) { c.runQueue(ctx, c.sync) }

// enqueueForPod queues every Service of p's namespace whose selector matches it.
func (c *EndpointsController) enqueueForPod(p *api.Pod) {
	for _, svc := range c.services.InNamespace(p.Namespace) {
		if len(svc.Spec.Selector) > 0 && api.SelectorFromMap(svc.Spec.Selector).Matches(p.Labels) {
			c.enqueue(svc)
		}
	}
}

func (c *EndpointsController) sync(ctx context.Context, key string) error {
	svc, ok := c.services.Get(key)
	if !ok {
		return nil // the garbage collector removes the Endpoints it owned
	}
	if len(svc.Spec.Selector) == 0 || svc.DeletionTimestamp != nil {
		return nil // Endpoints of a Service without a selector are written by hand
	}
	subsets := EndpointSubsets(svc, c.pods.InNamespace(svc.Namespace))

	cur, ok := c.endpoints.Get(key)
	if !ok {
		// The informer may lag our own create: ask the API before creating.
		got, err := client.Get[*api.Endpoints](ctx, c.client, svc.Namespace, svc.Name)
		if err != nil && !client.IsNotFound(err) {
			return err
		}
		cur = got
	}
	if cur == nil {
		ep := client.NewObject[*api.Endpoints]()
		ep.Namespace, ep.Name = svc.Namespace, svc.Name
		ep.Labels = copyLabels(svc.Labels)
		ep.OwnerReferences = []api.OwnerReference{serviceOwnerRef(svc)}
		ep.Subsets = subsets
		_, err := c.client.Create(ctx, ep)
		if client.IsAlreadyExists(err) {
			return fmt.Errorf("endpoints %s appeared meanwhile: %w", key, err) // retried
		}
		return err
	}
	if reflect.DeepEqual(normalSubsets(cur.Subsets), subsets) && endpointsOwnedBy(cur, svc) {
		return nil
	}
	next := api.DeepCopyOf(cur)
	next.Subsets = subsets
	if !endpointsOwnedBy(next, svc) {
		next.OwnerReferences = append(withoutServiceRefs(next.OwnerReferences), serviceOwnerRef(svc))
	}
	_, err := c.client.Update(ctx, next)
	return err
}

func copyLabels(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func serviceOwnerRef(svc *api.Service) api.OwnerReference {
	t := true
	return api.OwnerReference{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID, Controller: &t, BlockOwnerDeletion: &t}
}

func endpointsOwnedBy(ep *api.Endpoints, svc *api.Service) bool {
	for _, r := range ep.OwnerReferences {
		if r.Kind == "Service" && r.UID == svc.UID {
			return true
		}
	}
	return false
}

// withoutServiceRefs drops references to an earlier Service of the same name.
func withoutServiceRefs(refs []api.OwnerReference) []api.OwnerReference {
	var out []api.OwnerReference
	for _, r := range refs {
		if r.Kind != "Service" {
			out = append(out, r)
		}
	}
	return out
}

// normalSubsets makes an empty list and nil compare equal.
func normalSubsets(s []api.EndpointSubset) []api.EndpointSubset {
	if len(s) == 0 {
		return nil
	}
	return s
}

// EndpointSubsets computes the subsets of svc's Endpoints from pods (any pods: those
// of other namespaces, not matching the selector, without an address or being
// deleted are left out). Pods that resolve the Service's ports alike share a subset;
// a pod lacking a named target port is left out of that port, and out of the
// Endpoints if it resolves none. The result is sorted, so equal inputs give equal
// outputs; nil means no endpoints.
func EndpointSubsets(svc *api.Service, pods []*api.Pod) []api.EndpointSubset {
	sel := api.SelectorFromMap(svc.Spec.Selector)
	type group struct {
		ports           []api.EndpointPort
		ready, notReady []api.EndpointAddress
	}
	groups := map[string]*group{}
	for _, p := range pods {
		if p.Namespace != svc.Namespace || p.Status.PodIP == "" || p.DeletionTimestamp != nil ||
			len(svc.Spec.Selector) == 0 || !sel.Matches(p.Labels) {
			continue
		}
		if p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed {
			continue // finished pods serve nothing, and their address may be reused
		}
		var ports []api.EndpointPort
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			if n, ok := resolveTargetPort(p, sp); ok {
				ports = append(ports, api.EndpointPort{Name: sp.Name, Port: n, Protocol: sp.Protocol})
			}
		}
		if len(ports) == 0 && len(svc.Spec.Ports) > 0 {
			continue
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i].Name < ports[j].Name })
		var k strings.Builder
		for _, pt := range ports {
			fmt.Fprintf(&k, "%s=%d/%s,", pt.Name, pt.Port, pt.Protocol)
		}
		g := groups[k.String()]
		if g == nil {
			g = &group{ports: ports}
			groups[k.String()] = g
		}
		addr := api.EndpointAddress{IP: p.Status.PodIP, NodeName: p.Spec.NodeName,
			TargetRef: &api.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}}
		if podServing(p) {
			g.ready = append(g.ready, addr)
		} else {
			g.notReady = append(g.notReady, addr)
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []api.EndpointSubset
	for _, k := range keys {
		g := groups[k]
		for _, l := range [][]api.EndpointAddress{g.ready, g.notReady} {
			sort.Slice(l, func(i, j int) bool {
				if l[i].IP != l[j].IP {
					return l[i].IP < l[j].IP
				}
				return l[i].TargetRef.Name < l[j].TargetRef.Name
			})
		}
		out = append(out, api.EndpointSubset{Addresses: g.ready, NotReadyAddresses: g.notReady, Ports: g.ports})
	}
	return out
}

// resolveTargetPort finds the pod's port for sp: the number, or the container port of
// that name (and protocol).
func resolveTargetPort(p *api.Pod, sp *api.ServicePort) (int32, bool) {
	if !sp.TargetPort.IsStr {
		if sp.TargetPort.IntVal == 0 {
			return sp.Port, true
		}
		return sp.TargetPort.IntVal, true
	}
	for _, ctr := range p.Spec.Containers {
		for _, cp := range ctr.Ports {
			proto := cp.Protocol
			if proto == "" {
				proto = api.ProtocolTCP
			}
			if cp.Name == sp.TargetPort.StrVal && proto == sp.Protocol {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}
