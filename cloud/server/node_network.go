package server

import (
	"context"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// startNetwork waits until the master has given this node its pod subnet, then sets
// the node's network up; pod sandboxes wait for it.
func (n *Node) startNetwork(ctx context.Context) {
	select {
	case <-n.Registered():
	case <-ctx.Done():
		return
	}
	subnet := make(chan string, 1)
	offer := func(node *api.Node) {
		if ctx.Err() != nil || node.Name != n.name || node.Spec.PodCIDR == "" {
			return
		}
		select {
		case subnet <- node.Spec.PodCIDR:
		default: // one offered already: a node's subnet does not change
		}
	}
	client.For[*api.Node](n.informers).AddHandler(client.TypedHandler[*api.Node]{
		OnAdd:    offer,
		OnUpdate: func(_, node *api.Node) { offer(node) },
	})
	var podCIDR string
	select {
	case podCIDR = <-subnet:
	case <-ctx.Done():
		return
	}
	// Pods wait for the network, so a failure (iptables busy, say) is retried.
	for err := n.network.Start(podCIDR); err != nil; err = n.network.Start(podCIDR) {
		n.log.Error("setting up the pod network failed; retrying (pods wait for it)", zap.Error(err))
		if !sleepCtx(ctx, 2*time.Second) {
			return
		}
	}
	n.reconcileNetwork(ctx)
}

// reconcileNetwork gives the pool back the addresses of pods deleted while the
// agent was down. It lists this node's pods from the API rather than a cache: the
// list must be read after the pool opened, or it could miss a pod attached since.
func (n *Node) reconcileNetwork(ctx context.Context) {
	for ctx.Err() == nil {
		pods, err := client.ListTyped[*api.Pod](ctx, n.client, "", client.ListOptions{FieldSelector: "spec.nodeName=" + n.name})
		if err == nil {
			known := map[string]net.IP{}
			for _, p := range pods {
				known[p.UID] = net.ParseIP(p.Status.PodIP)
			}
			if err = n.network.Reconcile(known); err == nil {
				return
			}
		}
		n.log.Warn("reconciling pod addresses with the API failed; retrying", zap.Error(err))
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
}

// sleepCtx waits for d; it returns false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
