package api

import "maps"

// legacySelectorVersions are the retired group versions whose workloads may leave
// spec.selector out: it is then the template's labels, as extensions/v1beta1 and
// apps/v1beta1 defaulted it. Course material written for them applies as it is;
// apps/v1 requires the selector. Every workload kind is read so under each of them,
// also those the version never served (a ReplicaSet under apps/v1beta1), since the
// alias accepts them.
var legacySelectorVersions = map[string]bool{
	"extensions/v1beta1": true,
	"apps/v1beta1":       true,
	"apps/v1beta2":       true,
}

// defaultLegacySelector fills the selector of a workload that a manifest of a legacy
// version (as the manifest spells it) left out, from the template's labels, and says
// what it did; "" when it did nothing. A template without labels is left for
// validation to refuse the missing selector.
func defaultLegacySelector(apiVersion string, obj Object) string {
	if !legacySelectorVersions[apiVersion] {
		return ""
	}
	sel, tmpl := selectorAndTemplate(obj)
	if sel == nil || *sel != nil || len(tmpl.Metadata.Labels) == 0 {
		return ""
	}
	*sel = &LabelSelector{MatchLabels: maps.Clone(tmpl.Metadata.Labels)}
	return "spec.selector defaulted to " + SelectorFromMap(tmpl.Metadata.Labels).String() +
		" from the template's labels; write it out for apps/v1"
}

// selectorAndTemplate reaches the selector and pod template of the workload kinds;
// nil for other kinds.
func selectorAndTemplate(obj Object) (**LabelSelector, *PodTemplateSpec) {
	switch w := obj.(type) {
	case *Deployment:
		return &w.Spec.Selector, &w.Spec.Template
	case *ReplicaSet:
		return &w.Spec.Selector, &w.Spec.Template
	case *DaemonSet:
		return &w.Spec.Selector, &w.Spec.Template
	case *StatefulSet:
		return &w.Spec.Selector, &w.Spec.Template
	}
	return nil, nil
}
