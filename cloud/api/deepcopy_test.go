package api

import (
	"reflect"
	"testing"
	"time"
)

func TestDeepCopy(t *testing.T) {
	p := validPod()
	p.CreationTimestamp = NewTime(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	p.Spec.Affinity = &Affinity{NodeAffinity: map[string]any{"required": []any{map[string]any{"key": "zone"}}}}
	p.Spec.Containers[0].Resources.Limits["cpu"] = MustParseQuantity("1").Sub(MustParseQuantity("2")) // negative: no JSON form
	p.Spec.Containers[1].Env = []EnvVar{}                                                             // empty, not nil
	p.Status.ContainerStatuses = []ContainerStatus{{Name: "web", State: ContainerState{Running: &ContainerStateRunning{StartedAt: Now()}}}}

	c := DeepCopy(p).(*Pod)
	if !reflect.DeepEqual(c, p) {
		t.Fatalf("copy differs:\n%+v\n%+v", c, p)
	}

	// Changing the copy anywhere leaves the original alone.
	c.Labels["app"] = "changed"
	c.Spec.Containers[0].Command[0] = "changed"
	c.Spec.Containers[0].Resources.Requests["cpu"] = MustParseQuantity("9")
	c.Spec.Containers[0].LivenessProbe.PeriodSeconds = 99
	*c.Spec.TerminationGracePeriodSeconds = 99
	c.Spec.Affinity.NodeAffinity["required"].([]any)[0].(map[string]any)["key"] = "changed"
	c.Status.ContainerStatuses[0].State.Running.StartedAt.Time = time.Time{}
	c.CreationTimestamp.Time = time.Time{}

	orig := validPod()
	if p.Labels["app"] != "web" || p.Spec.Containers[0].Command[0] != "sleep" ||
		p.Spec.Containers[0].Resources.Requests["cpu"] != orig.Spec.Containers[0].Resources.Requests["cpu"] ||
		p.Spec.Containers[0].LivenessProbe.PeriodSeconds != 10 || *p.Spec.TerminationGracePeriodSeconds != 0 ||
		p.Spec.Affinity.NodeAffinity["required"].([]any)[0].(map[string]any)["key"] != "zone" ||
		p.Status.ContainerStatuses[0].State.Running.StartedAt.IsZero() || p.CreationTimestamp.IsZero() {
		t.Errorf("changing the copy changed the original: %+v", p)
	}
	if p.Spec.Containers[1].Env == nil || c.Spec.Containers[1].Env == nil {
		t.Errorf("an empty list became nil")
	}

	if DeepCopy(nil) != nil {
		t.Errorf("DeepCopy(nil) is not nil")
	}
	n := &Node{ObjectMeta: ObjectMeta{Name: "n"}, Status: NodeStatus{Capacity: ResourceList{"cpu": MustParseQuantity("4")}}}
	if nc := DeepCopy(n); !reflect.DeepEqual(nc, n) {
		t.Errorf("node copy differs")
	}
}
