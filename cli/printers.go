package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// columns describes one kind's table: its headers and how to fill a row. Wide
// columns are added by -o wide.
type columns struct {
	headers []string
	row     func(api.Object) []string
	wide    []string
	wideRow func(api.Object) []string
}

// tables holds the per-kind tables by resource name; kinds without one get NAME and
// AGE. Each is added with addTable.
var tables = map[string]columns{}

// tableOf is a kind's table written over its Go type T: its rows are only ever given
// objects of T's kind.
type tableOf[T api.Object] struct {
	headers []string
	row     func(T) []string
	wide    []string
	wideRow func(T) []string
}

// addTable makes t the table of T's kind.
func addTable[T api.Object](t tableOf[T]) {
	c := columns{headers: t.headers, wide: t.wide, row: func(o api.Object) []string { return t.row(o.(T)) }}
	if t.wideRow != nil {
		c.wideRow = func(o api.Object) []string { return t.wideRow(o.(T)) }
	}
	tables[api.KindOfType[T]().Resource] = c
}

func init() {
	addTable(tableOf[*api.Pod]{
		headers: []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"},
		row: func(p *api.Pod) []string {
			ready, restarts := 0, int32(0)
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Ready {
					ready++
				}
				restarts += cs.RestartCount
			}
			return []string{p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), podStatus(p), fmt.Sprint(restarts), age(p.CreationTimestamp)}
		},
		wide: []string{"IP", "NODE"},
		wideRow: func(p *api.Pod) []string {
			return []string{orNone(p.Status.PodIP), orNone(p.Spec.NodeName)}
		},
	})
	addTable(tableOf[*api.Node]{
		headers: []string{"NAME", "STATUS", "ROLES", "AGE", "VERSION"},
		row: func(n *api.Node) []string {
			status := "NotReady"
			if n.IsReady() {
				status = "Ready"
			}
			if n.Spec.Unschedulable {
				status += ",SchedulingDisabled"
			}
			roles := "<none>"
			if _, ok := n.Labels[api.LabelRole]; ok {
				roles = "control-plane"
			}
			return []string{n.Name, status, roles, age(n.CreationTimestamp), orNone(n.Status.NodeInfo.AgentVersion)}
		},
		wide: []string{"INTERNAL-IP", "ZONE", "CPU", "MEMORY", "OS-IMAGE", "KERNEL-VERSION"},
		wideRow: func(n *api.Node) []string {
			return []string{orNone(n.InternalIP()), orNone(n.Labels[api.LabelZone]),
				n.Status.Allocatable[api.ResourceCPU].String(), n.Status.Allocatable[api.ResourceMemory].String(),
				orNone(n.Status.NodeInfo.OSImage), orNone(n.Status.NodeInfo.KernelVersion)}
		},
	})
	addTable(tableOf[*api.Namespace]{
		headers: []string{"NAME", "STATUS", "AGE"},
		row: func(ns *api.Namespace) []string {
			return []string{ns.Name, orNone(ns.Status.Phase), age(ns.CreationTimestamp)}
		},
	})
}

func tableFor(k *api.KindInfo) columns {
	if t, ok := tables[k.Resource]; ok {
		return t
	}
	return columns{
		headers: []string{"NAME", "AGE"},
		row: func(o api.Object) []string {
			m := o.GetObjectMeta()
			return []string{m.Name, age(m.CreationTimestamp)}
		},
	}
}

// tablePrinter writes rows aligned in columns.
type tablePrinter struct {
	tw            *tabwriter.Writer
	cols          columns
	wide, withNS  bool
	headerPrinted bool
}

func newTablePrinter(w io.Writer, k *api.KindInfo, wide, withNS bool) *tablePrinter {
	return &tablePrinter{tw: tabwriter.NewWriter(w, 0, 8, 3, ' ', 0), cols: tableFor(k), wide: wide, withNS: withNS}
}

func (t *tablePrinter) header() {
	h := t.cols.headers
	if t.wide {
		h = append(append([]string{}, h...), t.cols.wide...)
	}
	if t.withNS {
		h = append([]string{"NAMESPACE"}, h...)
	}
	fmt.Fprintln(t.tw, strings.Join(h, "\t"))
	t.headerPrinted = true
}

func (t *tablePrinter) print(o api.Object) {
	if !t.headerPrinted {
		t.header()
	}
	r := t.cols.row(o)
	if t.wide && t.cols.wideRow != nil {
		r = append(r, t.cols.wideRow(o)...)
	}
	if t.withNS {
		r = append([]string{o.GetObjectMeta().Namespace}, r...)
	}
	fmt.Fprintln(t.tw, strings.Join(r, "\t"))
}

func (t *tablePrinter) flush() { _ = t.tw.Flush() }

// sortObjects orders by namespace, then name, as kubectl shows lists.
func sortObjects(objs []api.Object) {
	if sortEvents(objs) {
		return
	}
	sort.Slice(objs, func(i, j int) bool {
		a, b := objs[i].GetObjectMeta(), objs[j].GetObjectMeta()
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}

// podStatus is the STATUS column: a waiting or terminated reason when there is one,
// else the phase.
func podStatus(p *api.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
		if t := cs.State.Terminated; t != nil && t.Reason != "" && p.Status.Phase != api.PodSucceeded {
			return t.Reason
		}
	}
	if c := p.Status.Condition(api.PodScheduled); c != nil && c.Status == api.ConditionFalse {
		return "Pending"
	}
	if p.Status.Phase == api.PodSucceeded {
		return "Completed"
	}
	return orNone(p.Status.Phase)
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// age renders a duration as kubectl does: 45s, 12m, 5h, 3d.
func age(t *api.Time) string {
	if t == nil || t.IsZero() {
		return "<unknown>"
	}
	return shortDuration(time.Since(t.Time))
}

func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
