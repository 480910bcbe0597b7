package controller

import (
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// TestReplicaFailureSurfacesInDeployment: pods a ReplicaSet cannot create (here:
// its namespace is being deleted, so the API refuses them) give the ReplicaSet a
// ReplicaFailure condition with reason FailedCreate and the API's message, and the
// Deployment the same condition; both go once the ReplicaSet manages again.
func TestReplicaFailureSurfacesInDeployment(t *testing.T) {
	e := newAppsEnv(t)
	ns := &api.Namespace{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Namespace"}}
	ns.Name = "doomed"
	e.create(ns)
	d := appsNewDeploy("web", 1, "nginx:1")
	d.Namespace = "doomed"
	e.create(d)
	waitList(t, e.cl, "deployments", "doomed", "rolled out", func(objs []api.Object) bool {
		return len(objs) == 1 && objs[0].(*api.Deployment).Status.AvailableReplicas == 1
	})
	// No namespace controller runs here: the namespace stays Terminating.
	if _, err := e.cl.Delete(e.ctx, kind("namespaces"), "", "doomed"); err != nil {
		t.Fatal(err)
	}
	change(t, e.cl, "deployments", "doomed", "web", func(o api.Object) { o.(*api.Deployment).Spec.Replicas = appsI32(3) })

	failed := func(typ, status, reason, msg string) bool {
		return typ == api.DeploymentReplicaFailure && status == api.ConditionTrue && reason == "FailedCreate" &&
			strings.Contains(msg, "is being deleted")
	}
	waitList(t, e.cl, "replicasets", "doomed", "ReplicaFailure on the replicaset", func(objs []api.Object) bool {
		for _, o := range objs {
			for _, c := range o.(*api.ReplicaSet).Status.Conditions {
				if failed(c.Type, c.Status, c.Reason, c.Message) {
					return true
				}
			}
		}
		return false
	})
	waitList(t, e.cl, "deployments", "doomed", "ReplicaFailure on the deployment", func(objs []api.Object) bool {
		c := objs[0].(*api.Deployment).Status.Condition(api.DeploymentReplicaFailure)
		return c != nil && failed(c.Type, c.Status, c.Reason, c.Message)
	})

	// Back to one replica: nothing to create, so nothing fails.
	change(t, e.cl, "deployments", "doomed", "web", func(o api.Object) { o.(*api.Deployment).Spec.Replicas = appsI32(1) })
	waitList(t, e.cl, "deployments", "doomed", "ReplicaFailure cleared", func(objs []api.Object) bool {
		d := objs[0].(*api.Deployment)
		return d.Status.Condition(api.DeploymentReplicaFailure) == nil && d.Status.ObservedGeneration == d.Generation
	})
	for _, o := range waitList(t, e.cl, "replicasets", "doomed", "replicasets", func([]api.Object) bool { return true }) {
		if c := rsCondition(o.(*api.ReplicaSet).Status, api.DeploymentReplicaFailure); c != nil {
			t.Fatalf("replicaset %s keeps %+v", o.GetObjectMeta().Name, c)
		}
	}
}
