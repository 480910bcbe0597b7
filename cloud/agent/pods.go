package agent

import (
	"context"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

var podKind, _ = api.LookupKind("pods")

// finishDeletions watches the pods bound to this node and completes their graceful
// deletion. No containers run yet (the runtime comes with the container issue), so
// there is nothing to stop: a pod marked for deletion is removed at once.
func (a *Agent) finishDeletions(ctx context.Context) {
	inf := client.NewInformer(a.cfg.Client, podKind, "", client.ListOptions{FieldSelector: "spec.nodeName=" + a.cfg.NodeName}, a.log)
	finish := func(o api.Object) {
		p := o.(*api.Pod)
		if p.DeletionTimestamp == nil {
			return
		}
		zero := int64(0)
		if _, err := a.cfg.Client.DeleteWithGrace(ctx, podKind, p.Namespace, p.Name, &zero); err != nil && !client.IsNotFound(err) {
			a.log.Warn("finishing pod deletion failed", zap.String("pod", p.Key()), zap.Error(err))
		}
	}
	inf.AddHandler(client.Handler{OnAdd: finish, OnUpdate: func(_, o api.Object) { finish(o) }})
	inf.Run(ctx)
}
