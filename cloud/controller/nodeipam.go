package controller

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/net/ipam"
)

// NodeIPAM gives every node its share of the cluster CIDR in spec.podCIDR, the
// subnet its agent hands pod addresses out of. One goroutine assigns, so two nodes
// never get the same subnet; the subnets already on Node objects are the state.
type NodeIPAM struct {
	base
	nodes       client.Typed[*api.Node]
	clusterCIDR string
	subnets     *ipam.Subnets
	// assigned remembers the subnets this controller wrote, because the informer may
	// not show them yet when the next node is decided. Only the one worker uses it.
	assigned map[string]string
}

// NewNodeIPAM checks the cluster CIDR (if empty, ipam.DefaultClusterCIDR) and
// registers on the nodes informer of d's factory; then call Run.
func NewNodeIPAM(d Deps, clusterCIDR string) (*NodeIPAM, error) {
	if clusterCIDR == "" {
		clusterCIDR = ipam.DefaultClusterCIDR
	}
	subnets, err := ipam.SplitCluster(clusterCIDR, ipam.DefaultNodeMaskBits)
	if err != nil {
		return nil, err
	}
	// One worker, so two nodes are never given a subnet at once.
	c := &NodeIPAM{base: newBase(d, "", 1), nodes: client.For[*api.Node](d.Factory), clusterCIDR: clusterCIDR,
		subnets: subnets, assigned: map[string]string{}}
	c.nodes.AddHandler(client.TypedHandler[*api.Node]{OnAdd: func(n *api.Node) { c.enqueue(n) }, OnUpdate: func(_, n *api.Node) { c.enqueue(n) }})
	return c, nil
}

// Run assigns subnets until ctx ends.
func (c *NodeIPAM) Run(ctx context.Context) { c.runQueue(ctx, c.assign) }

func (c *NodeIPAM) assign(ctx context.Context, name string) error {
	subnets := c.subnets
	node, ok := c.nodes.Get(name)
	if !ok {
		return nil
	}
	if node.Spec.PodCIDR != "" && subnets.Contains(node.Spec.PodCIDR) {
		delete(c.assigned, name) // the cache has caught up
		return nil
	}
	if cidr := c.assigned[name]; cidr != "" {
		return nil // written already; the update event is on its way
	}
	var taken []string
	for _, n := range c.nodes.List() {
		if n.Name != name && n.Spec.PodCIDR != "" && subnets.Contains(n.Spec.PodCIDR) {
			taken = append(taken, n.Spec.PodCIDR)
		}
	}
	for n, cidr := range c.assigned {
		if n != name {
			taken = append(taken, cidr)
		}
	}
	cidr, err := subnets.Allocate(name, taken)
	if errors.Is(err, ipam.ErrExhausted) {
		c.log.Warn("the cluster CIDR has no subnet left for this node", zap.String("node", name), zap.String("cidr", c.clusterCIDR))
		return nil
	}
	if err != nil {
		return err
	}
	next := api.DeepCopyOf(node)
	next.Spec.PodCIDR = cidr
	// The resourceVersion read is a precondition: a conflict means the cache is
	// behind, and the retry decides again from a fresher view.
	if _, err := c.client.Update(ctx, next); err != nil {
		return err
	}
	c.assigned[name] = cidr
	c.log.Info("assigned the node its pod subnet", zap.String("node", name), zap.String("podCIDR", cidr))
	return nil
}
