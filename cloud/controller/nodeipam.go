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
	Client      *client.Client
	Nodes       *client.Informer
	ClusterCIDR string
	Logger      *zap.Logger

	subnets *ipam.Subnets
	queue   *Queue
	// assigned remembers the subnets this controller wrote, because the informer may
	// not show them yet when the next node is decided. Only the Run goroutine uses it.
	assigned map[string]string
}

// NewNodeIPAM checks the cluster CIDR and registers on the nodes informer; call it
// before the informer runs, then Run.
func NewNodeIPAM(cl *client.Client, nodes *client.Informer, clusterCIDR string, log *zap.Logger) (*NodeIPAM, error) {
	if clusterCIDR == "" {
		clusterCIDR = ipam.DefaultClusterCIDR
	}
	if log == nil {
		log = zap.NewNop()
	}
	subnets, err := ipam.SplitCluster(clusterCIDR, ipam.DefaultNodeMaskBits)
	if err != nil {
		return nil, err
	}
	c := &NodeIPAM{Client: cl, Nodes: nodes, ClusterCIDR: clusterCIDR, Logger: log,
		subnets: subnets, queue: NewQueue(), assigned: map[string]string{}}
	enqueue := func(o api.Object) { c.queue.Add(o.GetObjectMeta().Name) }
	nodes.AddHandler(client.Handler{OnAdd: enqueue, OnUpdate: func(_, o api.Object) { enqueue(o) }})
	return c, nil
}

// Run assigns subnets until ctx ends.
func (c *NodeIPAM) Run(ctx context.Context) {
	go func() { <-ctx.Done(); c.queue.ShutDown() }()
	select {
	case <-c.Nodes.Synced():
	case <-ctx.Done():
		return
	}
	c.queue.Work(ctx, c.Logger, c.assign)
}

func (c *NodeIPAM) assign(ctx context.Context, name string) error {
	subnets := c.subnets
	o := c.Nodes.Get(name)
	if o == nil {
		return nil
	}
	node := o.(*api.Node)
	if node.Spec.PodCIDR != "" && subnets.Contains(node.Spec.PodCIDR) {
		delete(c.assigned, name) // the cache has caught up
		return nil
	}
	if cidr := c.assigned[name]; cidr != "" {
		return nil // written already; the update event is on its way
	}
	var taken []string
	for _, other := range c.Nodes.List() {
		if n := other.(*api.Node); n.Name != name && n.Spec.PodCIDR != "" && subnets.Contains(n.Spec.PodCIDR) {
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
		c.Logger.Warn("the cluster CIDR has no subnet left for this node", zap.String("node", name), zap.String("cidr", c.ClusterCIDR))
		return nil
	}
	if err != nil {
		return err
	}
	next := api.DeepCopy(node).(*api.Node)
	next.Spec.PodCIDR = cidr
	// The resourceVersion read is a precondition: a conflict means the cache is
	// behind, and the retry decides again from a fresher view.
	if _, err := c.Client.Update(ctx, next); err != nil {
		return err
	}
	c.assigned[name] = cidr
	c.Logger.Info("assigned the node its pod subnet", zap.String("node", name), zap.String("podCIDR", cidr))
	return nil
}
