package controller

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// NodeLifecycle marks a node's Ready condition Unknown when its agent has not
// heartbeated for its grace period, which is what `get nodes` shows as NotReady.
type NodeLifecycle struct {
	client   *client.Client
	nodes    client.Typed[*api.Node]
	grace    time.Duration
	clock    Clock
	recorder *Recorder
	log      *zap.Logger
}

// NewNodeLifecycle returns a controller reading nodes from d's factory that lets a
// node be silent for grace (if zero, 40 s: Kubernetes's
// node-monitor-grace-period) and tells of the nodes it marks in NodeNotReady events.
func NewNodeLifecycle(d Deps, grace time.Duration) *NodeLifecycle {
	d = d.withDefaults()
	if grace == 0 {
		grace = 40 * time.Second
	}
	return &NodeLifecycle{client: d.Client, nodes: client.For[*api.Node](d.Factory), grace: grace, clock: d.Clock,
		recorder: newRecorder(d, "node-controller"), log: d.Logger}
}

// Run checks the nodes every quarter grace period until ctx is cancelled.
func (c *NodeLifecycle) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); c.recorder.Run(ctx) }()
	select {
	case <-c.nodes.Synced():
	case <-ctx.Done():
		return
	}
	for {
		for _, n := range c.nodes.List() {
			if err := c.check(ctx, n); err != nil && ctx.Err() == nil {
				c.log.Warn("marking node not ready failed", zap.String("node", n.Name), zap.Error(err))
			}
		}
		if !sleep(ctx, c.clock, max(c.grace/4, 100*time.Millisecond)) {
			return
		}
	}
}

// Stale reports whether node n has not heartbeated within grace at now.
func Stale(n *api.Node, grace time.Duration, now time.Time) bool {
	c := n.Status.Condition(api.NodeReady)
	if c == nil || c.Status == api.ConditionUnknown {
		return false // never reported, or already marked
	}
	return c.LastHeartbeatTime == nil || now.Sub(c.LastHeartbeatTime.Time) > grace
}

func (c *NodeLifecycle) check(ctx context.Context, n *api.Node) error {
	now := c.clock.Now()
	if !Stale(n, c.grace, now) {
		return nil
	}
	c.log.Info("node stopped heartbeating; marking it NotReady", zap.String("node", n.Name))
	next := api.DeepCopyOf(n)
	cond := next.Status.Condition(api.NodeReady)
	cond.Status = api.ConditionUnknown
	cond.Reason = "NodeStatusUnknown"
	cond.Message = "the node's agent stopped posting status"
	cond.LastTransitionTime = api.NewTime(now)
	// The resourceVersion read is kept as a precondition: if the agent heartbeated in
	// the meantime, this write loses, as it should.
	_, err := c.client.UpdateStatus(ctx, next)
	if client.IsConflict(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c.recorder.Event(n, api.EventNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", n.Name)
	return nil
}
