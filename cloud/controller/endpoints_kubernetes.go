package controller

import (
	"context"
	"net"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// The default/kubernetes Service has no selector: its Endpoints is the API server
// itself, which the endpoints controller cannot know. As the Kubernetes API
// server's endpoint reconciler does, the master writes it, and writes it again
// whenever someone changes or deletes it.

// KubernetesEndpoints keeps default/kubernetes's Endpoints pointing at this API
// server. The zero value is not usable: Client is required.
type KubernetesEndpoints struct {
	Client *client.Client
	// Host is the API server's listen host. An unspecified one (0.0.0.0, "")
	// means the host's first non-loopback IPv4 address outside cloudbox's own
	// interfaces; a loopback one leaves the Endpoints empty, since pods cannot
	// reach the node's loopback.
	Host string
	// Port is the API server's port.
	Port int

	clock     Clock
	log       *zap.Logger
	factory   *client.Factory
	endpoints client.Typed[*api.Endpoints]
	changed   chan struct{}
}

const (
	kubernetesNamespace = "default"
	kubernetesName      = "kubernetes"
)

// NewKubernetesEndpoints returns a writer of default/kubernetes's Endpoints for the
// API server at host and port; d's factory tells it when someone changes them.
func NewKubernetesEndpoints(d Deps, host string, port int) *KubernetesEndpoints {
	d = d.withDefaults()
	k := &KubernetesEndpoints{Client: d.Client, Host: host, Port: port, clock: d.Clock, log: d.Logger, factory: d.Factory,
		endpoints: client.For[*api.Endpoints](d.Factory), changed: make(chan struct{}, 1)}
	poke := func(ep *api.Endpoints) {
		if ep.Namespace != kubernetesNamespace || ep.Name != kubernetesName {
			return
		}
		select {
		case k.changed <- struct{}{}:
		default:
		}
	}
	k.endpoints.AddHandler(client.TypedHandler[*api.Endpoints]{OnAdd: poke, OnUpdate: func(_, ep *api.Endpoints) { poke(ep) }, OnDelete: poke})
	return k
}

// Run writes the Endpoints and keeps it so until ctx ends.
func (k *KubernetesEndpoints) Run(ctx context.Context) {
	select {
	case k.changed <- struct{}{}:
	default:
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.changed:
		}
		for {
			err := k.Ensure(ctx)
			if err == nil || ctx.Err() != nil {
				break
			}
			k.log.Warn("writing the default/kubernetes Endpoints failed; retrying", zap.Error(err))
			if !sleep(ctx, k.clock, time.Second) {
				return
			}
		}
	}
}

// Ensure writes the Endpoints once, changing nothing when it is right already.
func (k *KubernetesEndpoints) Ensure(ctx context.Context) error {
	svc, err := client.Get[*api.Service](ctx, k.Client, kubernetesNamespace, kubernetesName)
	if err != nil {
		return err
	}
	var subsets []api.EndpointSubset
	if ip := advertiseIP(k.Host); ip != nil {
		subsets = []api.EndpointSubset{{
			Addresses: []api.EndpointAddress{{IP: ip.String()}},
			Ports:     []api.EndpointPort{{Name: "https", Port: int32(k.Port), Protocol: api.ProtocolTCP}},
		}}
	}
	ep, err := client.Get[*api.Endpoints](ctx, k.Client, kubernetesNamespace, kubernetesName)
	if client.IsNotFound(err) {
		ep := client.NewObject[*api.Endpoints]()
		ep.Namespace, ep.Name = kubernetesNamespace, kubernetesName
		ep.Labels = copyLabels(svc.Labels)
		ep.OwnerReferences = []api.OwnerReference{serviceOwnerRef(svc)}
		ep.Subsets = subsets
		_, err = k.Client.Create(ctx, ep)
		return err
	}
	if err != nil {
		return err
	}
	if reflect.DeepEqual(normalSubsets(ep.Subsets), normalSubsets(subsets)) {
		return nil
	}
	next := api.DeepCopyOf(ep)
	next.Subsets = subsets
	_, err = k.Client.Update(ctx, next)
	return err
}

// advertiseIP is the address pods reach the API server at, or nil if none.
func advertiseIP(host string) net.IP {
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		if ip.IsLoopback() {
			return nil
		}
		return ip
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	sort.Slice(ifs, func(i, j int) bool { return ifs[i].Index < ifs[j].Index })
	for _, ifc := range ifs {
		// cbx*: cloudbox's bridges and veths; their addresses are the pods' side.
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "cbx") {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.To4()
			}
		}
	}
	return nil
}
