// Package controller holds the control plane's reconcile loops, one file each. They
// read through informers and write through the API client; none holds the store.
package controller

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// NodeLifecycle marks a node's Ready condition Unknown when its agent has not
// heartbeated for GracePeriod, which is what `get nodes` shows as NotReady.
type NodeLifecycle struct {
	Client *client.Client
	Nodes  *client.Informer
	// GracePeriod is how long a node may be silent. If zero, 40 s (Kubernetes's
	// node-monitor-grace-period).
	GracePeriod time.Duration
	// Now returns the current time; nil means time.Now (tests pass a fake clock).
	Now func() time.Time
	// Recorder receives the NodeNotReady events; nil means none. Run runs it.
	Recorder *Recorder
	Logger   *zap.Logger
}

// Run checks the nodes every quarter grace period until ctx is cancelled.
func (c *NodeLifecycle) Run(ctx context.Context) {
	if c.GracePeriod == 0 {
		c.GracePeriod = 40 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	log := c.Logger.Named("node-lifecycle")
	if c.Recorder != nil {
		go c.Recorder.Run(ctx)
	}
	select {
	case <-c.Nodes.Synced():
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(max(c.GracePeriod/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		for _, o := range c.Nodes.List() {
			n := o.(*api.Node)
			if err := c.check(ctx, n); err != nil && ctx.Err() == nil {
				log.Warn("marking node not ready failed", zap.String("node", n.Name), zap.Error(err))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
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
	if !Stale(n, c.GracePeriod, c.Now()) {
		return nil
	}
	c.Logger.Named("node-lifecycle").Info("node stopped heartbeating; marking it NotReady", zap.String("node", n.Name))
	next := api.DeepCopy(n).(*api.Node)
	cond := next.Status.Condition(api.NodeReady)
	cond.Status = api.ConditionUnknown
	cond.Reason = "NodeStatusUnknown"
	cond.Message = "the node's agent stopped posting status"
	cond.LastTransitionTime = api.NewTime(c.Now())
	// The resourceVersion read is kept as a precondition: if the agent heartbeated in
	// the meantime, this write loses, as it should.
	_, err := c.Client.UpdateStatus(ctx, next)
	if client.IsConflict(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c.Recorder.Event(n, api.EventNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", n.Name)
	return nil
}
