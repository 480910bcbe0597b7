package scheduler

import (
	"slices"
	"strconv"
	"strings"
)

// FitError says that a pod fits on no node, and why each node was rejected.
type FitError struct {
	// Pod is the pod's namespace/name.
	Pod string
	// NumNodes is how many nodes were considered.
	NumNodes int
	// Reasons counts the nodes rejected for each reason. A node short of several
	// resources counts under each, so the counts may add up to more than NumNodes.
	Reasons map[string]int
}

// Error reads like Kubernetes's message, reasons sorted so that it is stable:
// "0/3 nodes are available: 1 insufficient memory, 1 node(s) were not ready.".
func (e *FitError) Error() string {
	var b strings.Builder
	b.WriteString("0/")
	b.WriteString(strconv.Itoa(e.NumNodes))
	b.WriteString(" nodes are available: ")
	if e.NumNodes == 0 {
		b.WriteString("no nodes registered.")
		return b.String()
	}
	reasons := make([]string, 0, len(e.Reasons))
	for r := range e.Reasons {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for i, r := range reasons {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(e.Reasons[r]))
		b.WriteByte(' ')
		b.WriteString(r)
	}
	b.WriteByte('.')
	return b.String()
}
