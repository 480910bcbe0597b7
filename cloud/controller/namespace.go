package controller

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	Register("namespace", func(d Deps) Runner { return NewNamespaceController(d) })
}

// NamespaceController empties namespaces being deleted. The API server marks a
// deleted namespace Terminating with the finalizer "kubernetes"; this controller
// deletes every namespaced object in it (pods gracefully, so that their agents stop
// them) and, once nothing is left, removes the finalizer, which removes the namespace.
//
// While objects remain (pods stopping, objects with finalizers) the namespace is
// looked at again after a back-off capped at MaxRetryDelay, as Kubernetes's namespace
// controller does, rather than with a watch on every kind.
type NamespaceController struct {
	base
	// MaxRetryDelay caps the wait between two passes over a namespace that is not
	// empty yet. If zero, 2 s. Set it before Run.
	MaxRetryDelay time.Duration
}

// NewNamespaceController returns a controller that learns of namespaces being
// deleted from d's factory.
func NewNamespaceController(d Deps) *NamespaceController {
	c := &NamespaceController{base: newBase(d, "", 1)}
	enqueue := func(ns *api.Namespace) {
		if ns.DeletionTimestamp != nil {
			c.enqueue(ns)
		}
	}
	client.For[*api.Namespace](d.Factory).AddHandler(client.TypedHandler[*api.Namespace]{
		OnAdd: enqueue, OnUpdate: func(_, ns *api.Namespace) { enqueue(ns) }})
	return c
}

// errNotEmpty says a pass left objects that are still going away.
var errNotEmpty = fmt.Errorf("namespace still has objects (%w)", errRetry)

// Run works until ctx is cancelled.
func (c *NamespaceController) Run(ctx context.Context) {
	if c.MaxRetryDelay == 0 {
		c.MaxRetryDelay = 2 * time.Second
	}
	c.queue.BaseDelay, c.queue.MaxDelay = 20*time.Millisecond, c.MaxRetryDelay
	c.runQueue(ctx, c.sync)
}

func (c *NamespaceController) sync(ctx context.Context, name string) error {
	o, err := client.Get[*api.Namespace](ctx, c.client, "", name)
	if client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	m := o.GetObjectMeta()
	if m.DeletionTimestamp == nil || !m.HasFinalizer(api.FinalizerKubernetes) {
		return nil
	}
	remaining := 0
	for _, k := range api.Kinds() {
		if !k.Namespaced {
			continue
		}
		l, err := c.client.ListAll(ctx, k, name, client.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing %s: %w", k.Resource, err)
		}
		for _, it := range l.Items {
			im := it.GetObjectMeta()
			if im.DeletionTimestamp != nil {
				remaining++
				continue
			}
			last, err := c.client.Delete(ctx, k, name, im.Name)
			if client.IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("deleting %s %s: %w", k.Singular, im.Key(), err)
			}
			if last.GetObjectMeta().DeletionTimestamp != nil {
				remaining++
			}
		}
	}
	if remaining > 0 {
		return fmt.Errorf("%d left: %w", remaining, errNotEmpty)
	}
	c.log.Info("namespace is empty; removing it", zap.String("namespace", name))
	return updateLive(ctx, c.client, api.KindOfType[*api.Namespace](), "", name, m.UID, func(o api.Object) bool {
		return o.GetObjectMeta().RemoveFinalizer(api.FinalizerKubernetes)
	})
}
