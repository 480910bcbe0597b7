package controller

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// revisionNumbers maps the names of the revisions of the set named owner (by their
// controller reference) to their revision numbers.
func revisionNumbers(items []api.Object, owner string) map[string]int64 {
	out := map[string]int64{}
	for _, o := range items {
		r := o.(*api.ControllerRevision)
		if ref := r.ControllerRef(); ref != nil && ref.Name == owner {
			out[r.Name] = r.Revision
		}
	}
	return out
}

func formatRevisions(m map[string]int64) string {
	var parts []string
	for name, n := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", name, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// waitRevisions waits until the revisions of the set named owner are exactly want
// (name → revision number) and returns them by name.
func waitRevisions(t *testing.T, cl *client.Client, owner, what string, want map[string]int64) map[string]*api.ControllerRevision {
	t.Helper()
	var last map[string]int64
	items := waitList(t, cl, "controllerrevisions", "default", what, func(items []api.Object) bool {
		last = revisionNumbers(items, owner)
		return maps.Equal(last, want)
	})
	out := map[string]*api.ControllerRevision{}
	for _, o := range items {
		r := o.(*api.ControllerRevision)
		if _, ok := want[r.Name]; ok {
			out[r.Name] = r
		}
	}
	return out
}

// storedTemplate reads a set's template back from the API, defaulted as the
// controller sees it, for hashing.
func storedTemplate(t *testing.T, cl *client.Client, resource, name string) *api.PodTemplateSpec {
	t.Helper()
	o, err := cl.Get(context.Background(), kind(resource), "default", name)
	if err != nil {
		t.Fatal(err)
	}
	switch s := o.(type) {
	case *api.DaemonSet:
		return &s.Spec.Template
	case *api.StatefulSet:
		return &s.Spec.Template
	}
	t.Fatalf("%s has no template", resource)
	return nil
}

// A revision left by a set of the same name (orphaned when it was deleted) holds the
// name the new set's first revision wants: the controller counts a collision and
// names its revision, and labels its pods, with another hash.
func TestDaemonSetRevisionNameCollision(t *testing.T) {
	cl := newTestAPI(t)
	ds := dsNew("agent", nil)
	api.Default(ds)
	hash := templateHash(&ds.Spec.Template)
	left := &api.ControllerRevision{Revision: 4, Data: &api.PodTemplateSpec{}}
	left.Namespace, left.Name = "default", "agent-"+hash
	left.Labels = map[string]string{api.LabelControllerRevisionHash: hash}
	mustCreate(t, cl, left)

	dsNewNode(t, cl, "n1", nil, false)
	startController(t, NewDaemonSetController(testDeps(t, cl)).Run)
	ds = mustCreate(t, cl, ds).(*api.DaemonSet)
	one := int32(1)
	other := revisionHash(&ds.Spec.Template, &one)
	revs := waitRevisions(t, cl, "agent", "a revision under another name", map[string]int64{"agent-" + other: 1})
	if r := revs["agent-"+other]; r.Labels[api.LabelControllerRevisionHash] != other {
		t.Errorf("revision labels %v, want hash %s", r.Labels, other)
	}
	pod := dsWaitNodes(t, cl, "a pod on n1", "n1")["n1"][0]
	if got := pod.Labels[api.LabelControllerRevisionHash]; got != other {
		t.Errorf("pod labelled with hash %s, want %s", got, other)
	}
	o, err := cl.Get(context.Background(), kind("daemonsets"), "default", "agent")
	if err != nil {
		t.Fatal(err)
	}
	if cc := o.(*api.DaemonSet).Status.CollisionCount; cc == nil || *cc != 1 {
		t.Errorf("collisionCount %v, want 1", cc)
	}
	if _, err := cl.Get(context.Background(), kind("controllerrevisions"), "default", left.Name); err != nil {
		t.Errorf("the other revision: %v", err)
	}
}
