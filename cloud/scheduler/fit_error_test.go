package scheduler

import "testing"

func TestFitErrorMessage(t *testing.T) {
	tests := []struct {
		err  FitError
		want string
	}{
		{FitError{NumNodes: 3, Reasons: map[string]int{
			reasonNotReady: 1, reasonSelectorMismatch: 1, reasonInsufficientMem: 1,
		}}, "0/3 nodes are available: 1 insufficient memory, 1 node(s) didn't match node selector, 1 node(s) were not ready."},
		{FitError{NumNodes: 0}, "0/0 nodes are available: no nodes registered."},
		{FitError{NumNodes: 12, Reasons: map[string]int{
			reasonUnschedulable: 2, reasonTooManyPods: 10, reasonInsufficientCPU: 10,
		}}, "0/12 nodes are available: 10 insufficient cpu, 2 node(s) were unschedulable, 10 too many pods."},
		{FitError{NumNodes: 2, Reasons: map[string]int{
			"node(s) had untolerated taint {b: }": 1, "node(s) had untolerated taint {a: 1}": 1,
		}}, "0/2 nodes are available: 1 node(s) had untolerated taint {a: 1}, 1 node(s) had untolerated taint {b: }."},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error():\n got %q\nwant %q", got, tt.want)
		}
	}
}
