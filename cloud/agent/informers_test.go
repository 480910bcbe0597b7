package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// An agent given a shared factory that holds every pod (the master's, in
// all-in-one) drives only the pods bound to its node.
func TestSharedInformersDriveOnlyThisNodesPods(t *testing.T) {
	h := newHarness(t)
	f := client.NewFactory(h.agentClient, client.FactoryOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx)
	t.Cleanup(func() { cancel(); f.Wait() }) // after the agent stopped: cleanups run last first
	h.startAgent(func(c *Config) { c.Informers = f })

	elsewhere := h.newPod("elsewhere", ctr("app"))
	elsewhere.Spec.NodeName = "node-2"
	elsewhere = h.createPod(elsewhere)
	h.createPod(h.newPod("here", ctr("app")))
	// The informer hands changes out in order, so once the pod created second runs,
	// the agent has seen the first.
	h.waitPod("here", phaseIs(api.PodRunning))

	for _, c := range h.drv.callList() {
		if strings.Contains(c, elsewhere.UID) {
			t.Errorf("the agent of %s drove a pod of node-2: %s", h.node, c)
		}
	}
	o, err := h.cl.Get(context.Background(), podKind, "default", "elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if got := o.(*api.Pod); got.ResourceVersion != elsewhere.ResourceVersion {
		t.Errorf("the agent of %s wrote to a pod of node-2: %+v", h.node, got.Status)
	}
}
