package cli

import (
	"fmt"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// The tables of StatefulSets, DaemonSets, their ControllerRevisions and
// PersistentVolumeClaims, with kubectl's columns.
func init() {
	addTable(tableOf[*api.StatefulSet]{
		headers: []string{"NAME", "READY", "AGE"},
		row: func(s *api.StatefulSet) []string {
			return []string{s.Name, fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, api.Int32Value(s.Spec.Replicas, 1)), age(s.CreationTimestamp)}
		},
		wide: []string{"CONTAINERS", "IMAGES"},
		wideRow: func(s *api.StatefulSet) []string {
			return containersAndImages(s.Spec.Template.Spec)
		},
	})
	addTable(tableOf[*api.DaemonSet]{
		headers: []string{"NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"},
		row: func(d *api.DaemonSet) []string {
			st := d.Status
			var sel []string
			for k, v := range d.Spec.Template.Spec.NodeSelector {
				sel = append(sel, k+"="+v)
			}
			return []string{d.Name, fmt.Sprint(st.DesiredNumberScheduled), fmt.Sprint(st.CurrentNumberScheduled), fmt.Sprint(st.NumberReady),
				fmt.Sprint(st.UpdatedNumberScheduled), fmt.Sprint(st.NumberAvailable), orNone(strings.Join(sel, ",")), age(d.CreationTimestamp)}
		},
		wide: []string{"CONTAINERS", "IMAGES"},
		wideRow: func(d *api.DaemonSet) []string {
			return containersAndImages(d.Spec.Template.Spec)
		},
	})
	addTable(tableOf[*api.ControllerRevision]{
		headers: []string{"NAME", "CONTROLLER", "REVISION", "AGE"},
		row: func(r *api.ControllerRevision) []string {
			return []string{r.Name, controllerName(r.ControllerRef()), fmt.Sprint(r.Revision), age(r.CreationTimestamp)}
		},
	})
	addTable(tableOf[*api.PersistentVolumeClaim]{
		headers: []string{"NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "AGE"},
		row: func(c *api.PersistentVolumeClaim) []string {
			capacity, volume := "", ""
			if q, ok := c.Status.Capacity[api.ResourceStorage]; ok {
				capacity = q.String()
			}
			if node := c.BoundNode(); node != "" {
				volume = "local:" + node
			}
			class := ""
			if c.Spec.StorageClassName != nil {
				class = *c.Spec.StorageClassName
			}
			return []string{c.Name, c.Status.Phase, volume, capacity, accessModes(c.Status.AccessModes), orNone(class), age(c.CreationTimestamp)}
		},
	})
}

// controllerName writes a controller reference as kubectl does: daemonset.apps/agent.
func controllerName(ref *api.OwnerReference) string {
	if ref == nil {
		return "<none>"
	}
	kind := strings.ToLower(ref.Kind)
	if group, _, ok := strings.Cut(ref.APIVersion, "/"); ok {
		kind += "." + group
	}
	return kind + "/" + ref.Name
}

func containersAndImages(s api.PodSpec) []string {
	var names, images []string
	for _, c := range s.Containers {
		names = append(names, c.Name)
		images = append(images, c.Image)
	}
	return []string{strings.Join(names, ","), strings.Join(images, ",")}
}

// accessModes abbreviates as kubectl does: RWO, ROX, RWX, RWOP.
func accessModes(ms []string) string {
	short := map[string]string{api.ReadWriteOnce: "RWO", api.ReadOnlyMany: "ROX", api.ReadWriteMany: "RWX", api.ReadWriteOncePod: "RWOP"}
	var out []string
	for _, m := range ms {
		out = append(out, short[m])
	}
	return strings.Join(out, ",")
}
