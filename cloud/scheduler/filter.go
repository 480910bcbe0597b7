package scheduler

import (
	"github.com/cloudbox/cloudbox/cloud/api"
)

// Taint effects and toleration operators, as Kubernetes spells them.
const (
	effectNoSchedule   = "NoSchedule"
	effectNoExecute    = "NoExecute"
	tolerationOpExists = "Exists"
	tolerationOpEqual  = "Equal"
)

// Why a node was rejected, worded as Kubernetes words it.
const (
	reasonNotReady         = "node(s) were not ready"
	reasonUnschedulable    = "node(s) were unschedulable"
	reasonSelectorMismatch = "node(s) didn't match node selector"
	reasonTooManyPods      = "too many pods"
	reasonInsufficientCPU  = "insufficient cpu"
	reasonInsufficientMem  = "insufficient memory"
)

// The single-reason answers of filter, shared so that rejecting a node allocates nothing.
var (
	whyNotReady         = []string{reasonNotReady}
	whyUnschedulable    = []string{reasonUnschedulable}
	whySelectorMismatch = []string{reasonSelectorMismatch}
)

// podRequest is what a pod asks for, in thousandths (millicores, millibytes).
type podRequest struct{ cpu, mem int64 }

// requestOf returns pod's effective CPU and memory request as api.Pod.Requests computes
// it (containers summed, the largest init container if larger), but without building
// a ResourceList: a decision reads it for every pod on every node, and allocating there
// made Requests half the cost of a decision. TestRequestOfMatchesAPI keeps the two in
// step.
func requestOf(p *api.Pod) podRequest {
	var r podRequest
	for i := range p.Spec.Containers {
		req := p.Spec.Containers[i].Resources.Requests
		r.cpu += req[api.ResourceCPU].MilliValue()
		r.mem += req[api.ResourceMemory].MilliValue()
	}
	for i := range p.Spec.InitContainers {
		req := p.Spec.InitContainers[i].Resources.Requests
		r.cpu = max(r.cpu, req[api.ResourceCPU].MilliValue())
		r.mem = max(r.mem, req[api.ResourceMemory].MilliValue())
	}
	return r
}

// nodeInfo is a feasible node with what it would hold once the pod is placed there.
type nodeInfo struct {
	name               string
	cpu, mem           int64 // requested, pod included, in thousandths
	allocCPU, allocMem int64
	pods               int // pods on the node, pod included
}

// filter decides whether pod fits node n. It returns the node's usage with the pod
// placed, or the reasons it does not fit: the first filter that fails decides, except
// that every short resource is named, as Kubernetes does. s.mu must be held.
func (s *Scheduler) filter(pod *api.Pod, req podRequest, n *api.Node) (nodeInfo, []string) {
	if !n.IsReady() {
		return nodeInfo{}, whyNotReady
	}
	if n.Spec.Unschedulable {
		return nodeInfo{}, whyUnschedulable
	}
	if t, ok := untoleratedTaint(n.Spec.Taints, pod.Spec.Tolerations); ok {
		return nodeInfo{}, []string{"node(s) had untolerated taint {" + t.Key + ": " + t.Value + "}"}
	}
	for k, v := range pod.Spec.NodeSelector {
		if got, ok := n.Labels[k]; !ok || got != v {
			return nodeInfo{}, whySelectorMismatch
		}
	}

	info := s.usage(n)
	info.cpu += req.cpu
	info.mem += req.mem
	info.pods++
	var why []string
	if maxPods, ok := allocatable(n, api.ResourcePods); ok && int64(info.pods)*1000 > maxPods {
		why = append(why, reasonTooManyPods)
	}
	// Like Kubernetes, a resource the pod does not ask for never keeps it off a node,
	// even an overcommitted one.
	if req.cpu > 0 && info.cpu > info.allocCPU {
		why = append(why, reasonInsufficientCPU)
	}
	if req.mem > 0 && info.mem > info.allocMem {
		why = append(why, reasonInsufficientMem)
	}
	return info, why
}

// usage sums the requests of the non-terminal pods on n, those the View shows and those
// this scheduler bound that it does not show yet. A pod the View shows confirms its
// assumption, which is dropped. s.mu must be held.
func (s *Scheduler) usage(n *api.Node) nodeInfo {
	info := nodeInfo{name: n.Name}
	info.allocCPU, _ = allocatable(n, api.ResourceCPU)
	info.allocMem, _ = allocatable(n, api.ResourceMemory)
	for _, p := range s.view.PodsOnNode(n.Name) {
		if s.assumed.len() > 0 {
			s.assumed.remove(podKey(p))
		}
		if p.IsTerminal() {
			continue
		}
		r := requestOf(p)
		info.cpu += r.cpu
		info.mem += r.mem
		info.pods++
	}
	for _, a := range s.assumed.onNode(n.Name) {
		info.cpu += a.req.cpu
		info.mem += a.req.mem
		info.pods++
	}
	return info
}

// allocatable returns what n offers of resource in thousandths: its allocatable
// amount, else its capacity; ok is false when the node reports neither.
func allocatable(n *api.Node, resource string) (milli int64, ok bool) {
	if q, ok := n.Status.Allocatable[resource]; ok {
		return q.MilliValue(), true
	}
	if q, ok := n.Status.Capacity[resource]; ok {
		return q.MilliValue(), true
	}
	return 0, false
}

// untoleratedTaint returns the first NoSchedule or NoExecute taint that no toleration
// tolerates. PreferNoSchedule taints only matter to scoring, which ignores them.
func untoleratedTaint(taints []api.Taint, tolerations []api.Toleration) (api.Taint, bool) {
	for _, t := range taints {
		if t.Effect != effectNoSchedule && t.Effect != effectNoExecute {
			continue
		}
		tolerated := false
		for _, tol := range tolerations {
			if tolerates(tol, t) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			return t, true
		}
	}
	return api.Taint{}, false
}

// tolerates matches a toleration against a taint as Kubernetes does: an empty effect
// matches every effect; operator Exists matches any value of the key, and with an
// empty key every taint; operator Equal (or none) needs key and value equal. An empty
// key with Equal, which Kubernetes validation rejects, tolerates nothing.
func tolerates(tol api.Toleration, t api.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	switch tol.Operator {
	case tolerationOpExists:
		return tol.Key == "" || tol.Key == t.Key
	case "", tolerationOpEqual:
		return tol.Key != "" && tol.Key == t.Key && tol.Value == t.Value
	}
	return false
}
