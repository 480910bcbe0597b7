package controller

import (
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestStale(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	node := func(status string, hb time.Duration) *api.Node {
		n := &api.Node{}
		n.Status.Conditions = []api.NodeCondition{{Type: api.NodeReady, Status: status, LastHeartbeatTime: api.NewTime(now.Add(-hb))}}
		return n
	}
	cases := []struct {
		name string
		node *api.Node
		want bool
	}{
		{"fresh heartbeat", node(api.ConditionTrue, 5*time.Second), false},
		{"silent past grace", node(api.ConditionTrue, 41*time.Second), true},
		{"exactly at grace", node(api.ConditionTrue, 40*time.Second), false},
		{"already unknown", node(api.ConditionUnknown, time.Hour), false},
		{"not ready and silent", node(api.ConditionFalse, time.Hour), true},
		{"never reported", &api.Node{}, false},
	}
	for _, c := range cases {
		if got := Stale(c.node, 40*time.Second, now); got != c.want {
			t.Errorf("%s: Stale = %v, want %v", c.name, got, c.want)
		}
	}
}
