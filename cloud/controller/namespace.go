package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	Client *client.Client
	// Logger is used as given (the registry names it).
	Logger *zap.Logger
	// MaxRetryDelay caps the wait between two passes over a namespace that is not
	// empty yet. If zero, 2 s. Set it before Run.
	MaxRetryDelay time.Duration

	queue *Queue
}

// NewNamespaceController returns a controller that learns of namespaces being
// deleted from d's factory.
func NewNamespaceController(d Deps) *NamespaceController {
	d = d.withDefaults()
	c := &NamespaceController{Client: d.Client, Logger: d.Logger, queue: NewQueue()}
	enqueue := func(ns *api.Namespace) {
		if ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	client.For[*api.Namespace](d.Factory).AddHandler(client.TypedHandler[*api.Namespace]{
		OnAdd: enqueue, OnUpdate: func(_, ns *api.Namespace) { enqueue(ns) }})
	return c
}

// errNotEmpty says a pass left objects that are still going away.
var errNotEmpty = errors.New("namespace still has objects")

// Run works until ctx is cancelled.
func (c *NamespaceController) Run(ctx context.Context) {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.MaxRetryDelay == 0 {
		c.MaxRetryDelay = 2 * time.Second
	}
	nsKind := api.KindOfType[*api.Namespace]()
	q := c.queue
	q.BaseDelay, q.MaxDelay = 20*time.Millisecond, c.MaxRetryDelay
	var wg sync.WaitGroup
	defer wg.Wait()
	defer q.ShutDown()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			name, ok := q.Get()
			if !ok {
				return
			}
			err := c.sync(ctx, nsKind, name)
			switch {
			case err == nil:
				q.Forget(name)
			case ctx.Err() != nil:
			default:
				if !errors.Is(err, errNotEmpty) {
					c.Logger.Warn("emptying namespace failed; retrying", zap.String("namespace", name), zap.Error(err))
				}
				q.AddRateLimited(name)
			}
			q.Done(name)
		}
	}()
	<-ctx.Done()
}

func (c *NamespaceController) sync(ctx context.Context, nsKind *api.KindInfo, name string) error {
	o, err := c.Client.Get(ctx, nsKind, "", name)
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
		l, err := c.Client.ListAll(ctx, k, name, client.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing %s: %w", k.Resource, err)
		}
		for _, it := range l.Items {
			im := it.GetObjectMeta()
			if im.DeletionTimestamp != nil {
				remaining++
				continue
			}
			last, err := c.Client.Delete(ctx, k, name, im.Name)
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
	c.Logger.Info("namespace is empty; removing it", zap.String("namespace", name))
	return updateLive(ctx, c.Client, nsKind, "", name, m.UID, func(o api.Object) bool {
		return o.GetObjectMeta().RemoveFinalizer(api.FinalizerKubernetes)
	})
}
