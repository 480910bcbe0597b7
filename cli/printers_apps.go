package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func init() {
	addTable(tableOf[*api.Deployment]{
		headers: []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"},
		row: func(d *api.Deployment) []string {
			want := api.Int32Value(d.Spec.Replicas, 1)
			return []string{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want), fmt.Sprint(d.Status.UpdatedReplicas),
				fmt.Sprint(d.Status.AvailableReplicas), age(d.CreationTimestamp)}
		},
		wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"},
		wideRow: func(d *api.Deployment) []string {
			return templateColumns(&d.Spec.Template, d.Spec.Selector)
		},
	})
	addTable(tableOf[*api.ReplicaSet]{
		headers: []string{"NAME", "DESIRED", "CURRENT", "READY", "AGE"},
		row: func(rs *api.ReplicaSet) []string {
			return []string{rs.Name, fmt.Sprint(api.Int32Value(rs.Spec.Replicas, 1)), fmt.Sprint(rs.Status.Replicas),
				fmt.Sprint(rs.Status.ReadyReplicas), age(rs.CreationTimestamp)}
		},
		wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"},
		wideRow: func(rs *api.ReplicaSet) []string {
			return templateColumns(&rs.Spec.Template, rs.Spec.Selector)
		},
	})
}

// templateColumns are the CONTAINERS, IMAGES and SELECTOR columns of a workload.
func templateColumns(t *api.PodTemplateSpec, sel *api.LabelSelector) []string {
	var names, images []string
	for _, c := range t.Spec.Containers {
		names, images = append(names, c.Name), append(images, c.Image)
	}
	selector := "<none>"
	if sel != nil {
		if s, err := sel.AsSelector(); err == nil {
			selector = s.String()
		}
	}
	return []string{strings.Join(names, ","), strings.Join(images, ","), selector}
}

// describeDeployment writes what `describe deploy` adds to the common metadata.
func describeDeployment(w io.Writer, d *api.Deployment) {
	want := api.Int32Value(d.Spec.Replicas, 1)
	s := d.Status
	field(w, "Replicas", fmt.Sprintf("%d desired | %d updated | %d total | %d available | %d unavailable",
		want, s.UpdatedReplicas, s.Replicas, s.AvailableReplicas, s.UnavailableReplicas))
	strategy := d.Spec.Strategy.Type
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil && strategy == "RollingUpdate" {
		strategy += fmt.Sprintf(" (max unavailable %s, max surge %s)", intOrStringText(ru.MaxUnavailable), intOrStringText(ru.MaxSurge))
	}
	field(w, "Strategy", strategy)
	field(w, "Revision", d.Annotations[api.AnnotationRevision])
	if d.Spec.Paused {
		field(w, "Paused", "true")
	}
	cols := templateColumns(&d.Spec.Template, d.Spec.Selector)
	field(w, "Selector", cols[2])
	field(w, "Containers", cols[0]+" ("+cols[1]+")")
	conditions(w, len(s.Conditions), func(i int) (string, string, string, string) {
		c := s.Conditions[i]
		return c.Type, c.Status, c.Reason, c.Message
	})
}

func intOrStringText(v *api.IntOrString) string {
	if v == nil {
		return "<unset>"
	}
	return v.String()
}
