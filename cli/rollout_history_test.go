package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestUndoTarget(t *testing.T) {
	revs := []templateRevision{{number: 2}, {number: 3}, {number: 4, current: true}}
	tests := []struct {
		name    string
		revs    []templateRevision
		want    int64
		got     int64
		wantErr string
	}{
		{name: "previous", revs: revs, got: 3},
		{name: "given", revs: revs, want: 2, got: 2},
		{name: "the current one", revs: revs, want: 4, got: 4},
		{name: "missing", revs: revs, want: 1, wantErr: `daemonset "agent" has no revision 1 (its revisions: 2, 3, 4)`},
		// A template not recorded yet is undone to the newest recorded one.
		{name: "current not recorded", revs: []templateRevision{{number: 1}, {number: 2}}, got: 2},
		{name: "only the current one", revs: revs[2:], wantErr: `daemonset "agent" has no previous revision to go back to (its revisions: 4)`},
		{name: "none", wantErr: `daemonset "agent" has no previous revision to go back to (its revisions: none)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := undoTarget(tt.revs, "daemonset", "agent", tt.want)
			switch {
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case r.number != tt.got:
				t.Errorf("revision %d, want %d", r.number, tt.got)
			}
		})
	}
}

func TestDaemonSetProgress(t *testing.T) {
	ds := func(gen, observed int64, desired, updated, available int32) *api.DaemonSet {
		d := &api.DaemonSet{}
		d.Name, d.Generation = "agent", gen
		d.Spec.UpdateStrategy.Type = api.RollingUpdateDaemonSetStrategyType
		d.Status = api.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired, UpdatedNumberScheduled: updated, NumberAvailable: available}
		return d
	}
	tests := []struct {
		d    *api.DaemonSet
		msg  string
		done bool
	}{
		{ds(2, 1, 3, 3, 3), "Waiting for daemon set spec update to be observed...", false},
		{ds(2, 2, 3, 1, 3), `Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...`, false},
		{ds(2, 2, 3, 3, 2), `Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...`, false},
		{ds(2, 2, 3, 3, 3), `daemon set "agent" successfully rolled out`, true},
		{ds(1, 1, 0, 0, 0), `daemon set "agent" successfully rolled out`, true},
	}
	for _, tt := range tests {
		msg, done, err := daemonSetProgress(tt.d)
		if err != nil || msg != tt.msg || done != tt.done {
			t.Errorf("%+v: %q %v %v, want %q %v", tt.d.Status, msg, done, err, tt.msg, tt.done)
		}
	}
	onDelete := ds(1, 1, 1, 1, 1)
	onDelete.Spec.UpdateStrategy.Type = api.OnDeleteDaemonSetStrategyType
	if _, _, err := daemonSetProgress(onDelete); err == nil || !strings.Contains(err.Error(), "only available for the RollingUpdate strategy") {
		t.Errorf("OnDelete: %v", err)
	}
}

func TestStatefulSetProgress(t *testing.T) {
	sts := func(partition int32, st api.StatefulSetStatus) *api.StatefulSet {
		s := &api.StatefulSet{}
		s.Name, s.Generation = "db", 2
		three := int32(3)
		s.Spec.Replicas = &three
		s.Spec.UpdateStrategy = api.StatefulSetUpdateStrategy{Type: api.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &api.RollingUpdateStatefulSetStrategy{Partition: &partition}}
		s.Status = st
		return s
	}
	tests := []struct {
		s    *api.StatefulSet
		msg  string
		done bool
	}{
		{sts(0, api.StatefulSetStatus{ObservedGeneration: 1}), "Waiting for statefulset spec update to be observed...", false},
		{sts(0, api.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 1}), "Waiting for 2 pods to be ready...", false},
		{sts(0, api.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 3, UpdatedReplicas: 1, CurrentRevision: "db-1", UpdateRevision: "db-2"}),
			"waiting for statefulset rolling update to complete 1 pods at revision db-2...", false},
		{sts(0, api.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 3, UpdatedReplicas: 3, CurrentReplicas: 3, CurrentRevision: "db-2", UpdateRevision: "db-2"}),
			"statefulset rolling update complete 3 pods at revision db-2...", true},
		{sts(2, api.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 3, UpdatedReplicas: 0, CurrentRevision: "db-1", UpdateRevision: "db-2"}),
			"Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated...", false},
		{sts(2, api.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 3, UpdatedReplicas: 1, CurrentRevision: "db-1", UpdateRevision: "db-2"}),
			"partitioned roll out complete: 1 new pods have been updated...", true},
	}
	for _, tt := range tests {
		msg, done, err := statefulSetProgress(tt.s)
		if err != nil || msg != tt.msg || done != tt.done {
			t.Errorf("%+v: %q %v %v, want %q %v", tt.s.Status, msg, done, err, tt.msg, tt.done)
		}
	}
}

func TestControllerName(t *testing.T) {
	ref := &api.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent"}
	if got := controllerName(ref); got != "daemonset.apps/agent" {
		t.Errorf("controllerName = %q", got)
	}
	if got := controllerName(nil); got != "<none>" {
		t.Errorf("controllerName(nil) = %q", got)
	}
}

// rolloutWorkloads run no pod: the daemon set's nodeSelector matches no node and the
// stateful set and deployment have no replicas, so their history and undo need no
// containers.
const rolloutWorkloads = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: "busybox:1.36"}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  annotations: {kubernetes.io/change-cause: first}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {example.com/none: none}
      containers: [{name: c, image: "busybox:1.36"}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 0
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: c, image: "busybox:1.36"}]
`

// TestRolloutHistoryAndUndoOfSets drives rollout history, undo and status of a
// daemon set and a stateful set through a real server, and of a deployment, whose
// history its replica sets keep, for comparison.
func TestRolloutHistoryAndUndoOfSets(t *testing.T) {
	c := startCluster(t)
	c.must("apply", "-f", writeFile(t, "sets.yaml", rolloutWorkloads))
	// history waits until the history of target lists want (revision and cause lines).
	history := func(target string, want ...string) {
		t.Helper()
		var out string
		eventually(t, target+"'s history", func() error {
			out = c.must("rollout", "history", target)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) < 2 || lines[1] != "REVISION  CHANGE-CAUSE" {
				return fmt.Errorf("no table:\n%s", out)
			}
			var got []string
			for _, l := range lines[2:] {
				got = append(got, strings.Join(strings.Fields(l), " "))
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				return fmt.Errorf("revisions %q, want %q", got, want)
			}
			return nil
		})
	}
	image := func(target string) string {
		var set struct {
			Spec struct{ Template api.PodTemplateSpec }
		}
		if err := json.Unmarshal([]byte(c.must("get", target, "-o", "json")), &set); err != nil || len(set.Spec.Template.Spec.Containers) == 0 {
			t.Fatalf("get %s -o json: %v", target, err)
		}
		return set.Spec.Template.Spec.Containers[0].Image
	}
	for _, tt := range []struct{ target, kind, cause string }{{"ds/agent", "daemonset", "first"}, {"sts/db", "statefulset", "<none>"}, {"deploy/web", "deployment", "<none>"}} {
		t.Run(tt.kind, func(t *testing.T) {
			c := c.in(t)
			history(tt.target, "1 "+tt.cause)
			c.must("set", "image", tt.target, "c=busybox:1.37")
			history(tt.target, "1 "+tt.cause, "2 "+tt.cause)
			if out := c.must("rollout", "history", tt.target, "--revision", "1"); !strings.HasPrefix(out, tt.kind+"/"+strings.Split(tt.target, "/")[1]+" with revision #1\n") ||
				!strings.Contains(out, "Pod Template:\n") || !strings.Contains(out, "image: busybox:1.36") {
				t.Errorf("history --revision 1:\n%s", out)
			}
			if msg := c.fails("rollout", "history", tt.target, "--revision", "7"); !strings.Contains(msg, "has no revision 7 (its revisions: 1, 2)") {
				t.Errorf("history --revision 7: %s", msg)
			}

			if out := c.must("rollout", "undo", tt.target); !strings.Contains(out, "rolled back to revision 1") {
				t.Errorf("undo: %s", out)
			}
			if got := image(tt.target); got != "busybox:1.36" {
				t.Errorf("image after undo: %q", got)
			}
			// Revision 1 is renumbered 3, not copied.
			history(tt.target, "2 "+tt.cause, "3 "+tt.cause)
			if msg := c.fails("rollout", "undo", tt.target, "--to-revision", "1"); !strings.Contains(msg, "has no revision 1 (its revisions: 2, 3)") {
				t.Errorf("undo --to-revision 1: %s", msg)
			}
			if out := c.must("rollout", "undo", tt.target, "--to-revision", "3"); !strings.Contains(out, "skipped rollback (current template already matches revision 3)") {
				t.Errorf("undo --to-revision 3: %s", out)
			}
			if out := c.must("rollout", "undo", tt.target, "--to-revision", "2"); !strings.Contains(out, "rolled back to revision 2") {
				t.Errorf("undo --to-revision 2: %s", out)
			}
			history(tt.target, "3 "+tt.cause, "4 "+tt.cause)
			if got := image(tt.target); got != "busybox:1.37" {
				t.Errorf("image after undo --to-revision 2: %q", got)
			}
			if out := c.must("rollout", "status", tt.target, "--timeout", "30s"); !strings.Contains(out, "success") && !strings.Contains(out, "complete") {
				t.Errorf("status: %s", out)
			}
		})
	}
	out := c.must("get", "controllerrevisions")
	for _, want := range []string{"NAME", "CONTROLLER", "REVISION", "daemonset.apps/agent", "statefulset.apps/db"} {
		if !strings.Contains(out, want) {
			t.Errorf("get controllerrevisions lacks %q:\n%s", want, out)
		}
	}
	if msg := c.fails("rollout", "pause", "ds/agent"); !strings.Contains(msg, "it works on deployments") {
		t.Errorf("pause ds: %s", msg)
	}
}
