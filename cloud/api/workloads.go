package api

import (
	"encoding/json"
	"fmt"
)

// StatefulSet runs pods with stable names (NAME-0 .. NAME-N-1), stable hostnames and
// a PersistentVolumeClaim per replica and claim template, created in order and
// removed in reverse.
type StatefulSet struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       StatefulSetSpec   `json:"spec,omitempty"`
	Status     StatefulSetStatus `json:"status,omitempty"`
}

// StatefulSetSpec is the desired state of a StatefulSet.
type StatefulSetSpec struct {
	Replicas    *int32          `json:"replicas,omitempty"`
	Selector    *LabelSelector  `json:"selector"`
	Template    PodTemplateSpec `json:"template"`
	ServiceName string          `json:"serviceName,omitempty"`
	// PodManagementPolicy is OrderedReady (the default: one pod at a time, each
	// Ready before the next) or Parallel.
	PodManagementPolicy  string                    `json:"podManagementPolicy,omitempty"`
	UpdateStrategy       StatefulSetUpdateStrategy `json:"updateStrategy,omitempty"`
	VolumeClaimTemplates []PersistentVolumeClaim   `json:"volumeClaimTemplates,omitempty"`
	RevisionHistoryLimit *int32                    `json:"revisionHistoryLimit,omitempty"`
	MinReadySeconds      int32                     `json:"minReadySeconds,omitempty"`
	// PersistentVolumeClaimRetentionPolicy is accepted; claims are always retained.
	PersistentVolumeClaimRetentionPolicy *StatefulSetPVCRetentionPolicy `json:"persistentVolumeClaimRetentionPolicy,omitempty"`
}

// StatefulSetPVCRetentionPolicy says what becomes of claims on scale-down and delete.
type StatefulSetPVCRetentionPolicy struct {
	WhenDeleted string `json:"whenDeleted,omitempty"`
	WhenScaled  string `json:"whenScaled,omitempty"`
}

// StatefulSetUpdateStrategy is RollingUpdate (the default: pods are replaced from
// the highest ordinal down to partition) or OnDelete (pods take the new template when
// someone deletes them).
type StatefulSetUpdateStrategy struct {
	Type          string                            `json:"type,omitempty"`
	RollingUpdate *RollingUpdateStatefulSetStrategy `json:"rollingUpdate,omitempty"`
}

// RollingUpdateStatefulSetStrategy bounds a StatefulSet's rolling update: ordinals
// below Partition keep the old template.
type RollingUpdateStatefulSetStrategy struct {
	Partition      *int32       `json:"partition,omitempty"`
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
}

// StatefulSetStatus is what the StatefulSet controller observed.
type StatefulSetStatus struct {
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	Replicas           int32  `json:"replicas"`
	ReadyReplicas      int32  `json:"readyReplicas,omitempty"`
	CurrentReplicas    int32  `json:"currentReplicas,omitempty"`
	UpdatedReplicas    int32  `json:"updatedReplicas,omitempty"`
	AvailableReplicas  int32  `json:"availableReplicas,omitempty"`
	CurrentRevision    string `json:"currentRevision,omitempty"`
	UpdateRevision     string `json:"updateRevision,omitempty"`
	CollisionCount     *int32 `json:"collisionCount,omitempty"`
}

// StatefulSet and DaemonSet policies and strategies, and the labels their pods carry.
const (
	OrderedReadyPodManagement = "OrderedReady"
	ParallelPodManagement     = "Parallel"

	RollingUpdateStatefulSetStrategyType = "RollingUpdate"
	OnDeleteStatefulSetStrategyType      = "OnDelete"

	RollingUpdateDaemonSetStrategyType = "RollingUpdate"
	OnDeleteDaemonSetStrategyType      = "OnDelete"

	// LabelControllerRevisionHash is the hash of the template a controller made a pod
	// from (the pod's revision).
	LabelControllerRevisionHash = "controller-revision-hash"
	// LabelStatefulSetPodName is a StatefulSet pod's own name, so a Service can pick one.
	LabelStatefulSetPodName = "statefulset.kubernetes.io/pod-name"
)

// DaemonSet runs one pod on every node that matches its template's nodeSelector.
type DaemonSet struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       DaemonSetSpec   `json:"spec,omitempty"`
	Status     DaemonSetStatus `json:"status,omitempty"`
}

// DaemonSetSpec is the desired state of a DaemonSet.
type DaemonSetSpec struct {
	Selector             *LabelSelector          `json:"selector"`
	Template             PodTemplateSpec         `json:"template"`
	UpdateStrategy       DaemonSetUpdateStrategy `json:"updateStrategy,omitempty"`
	MinReadySeconds      int32                   `json:"minReadySeconds,omitempty"`
	RevisionHistoryLimit *int32                  `json:"revisionHistoryLimit,omitempty"`
}

// DaemonSetUpdateStrategy is RollingUpdate (the default) or OnDelete.
type DaemonSetUpdateStrategy struct {
	Type          string                  `json:"type,omitempty"`
	RollingUpdate *RollingUpdateDaemonSet `json:"rollingUpdate,omitempty"`
}

// RollingUpdateDaemonSet bounds how many nodes may be without a ready pod during a
// rolling update (default 1). maxSurge is accepted and not used.
type RollingUpdateDaemonSet struct {
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
	MaxSurge       *IntOrString `json:"maxSurge,omitempty"`
}

// DaemonSetStatus is what the DaemonSet controller observed.
type DaemonSetStatus struct {
	ObservedGeneration     int64 `json:"observedGeneration,omitempty"`
	DesiredNumberScheduled int32 `json:"desiredNumberScheduled"`
	CurrentNumberScheduled int32 `json:"currentNumberScheduled"`
	NumberMisscheduled     int32 `json:"numberMisscheduled"`
	NumberReady            int32 `json:"numberReady"`
	UpdatedNumberScheduled int32 `json:"updatedNumberScheduled,omitempty"`
	NumberAvailable        int32 `json:"numberAvailable,omitempty"`
	NumberUnavailable      int32 `json:"numberUnavailable,omitempty"`
	// CollisionCount counts the ControllerRevision names the controller found taken
	// by another revision; it is mixed into the next revision hash so that the name
	// differs. Nil means none.
	CollisionCount *int32 `json:"collisionCount,omitempty"`
}

// ControllerRevision is one revision of a DaemonSet's or StatefulSet's pod template,
// kept by their controllers for `rollout history` and `rollout undo` (a Deployment's
// revisions are its ReplicaSets). It is named SET-HASH, carries the hash in the label
// controller-revision-hash and a controller owner reference to its set, so it goes
// with the set. Its data never changes; its revision number does, when the set goes
// back to the template, which then becomes the newest revision again.
type ControllerRevision struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	// Data is the pod template itself. (Kubernetes stores a patch of the owner that
	// replaces spec.template here; cloudbox keeps the template it would replace.)
	Data *PodTemplateSpec `json:"data"`
	// Revision orders a set's revisions; the newest has the highest number.
	Revision int64 `json:"revision"`
}

// DaemonSetMaxUnavailable resolves the rolling update's bound against the number of
// nodes; it is at least 1.
func (d *DaemonSet) DaemonSetMaxUnavailable(nodes int) int {
	n := 1
	if ru := d.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		if v, err := ScaledValue(ru.MaxUnavailable, nodes, true); err == nil {
			n = v
		}
	}
	return max(n, 1)
}

func defaultStatefulSet(obj Object) {
	s := &obj.(*StatefulSet).Spec
	if s.Replicas == nil {
		s.Replicas = int32Ptr(1)
	}
	if s.PodManagementPolicy == "" {
		s.PodManagementPolicy = OrderedReadyPodManagement
	}
	if s.UpdateStrategy.Type == "" {
		s.UpdateStrategy.Type = RollingUpdateStatefulSetStrategyType
	}
	if s.UpdateStrategy.Type == RollingUpdateStatefulSetStrategyType {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateStatefulSetStrategy{}
		}
		if s.UpdateStrategy.RollingUpdate.Partition == nil {
			s.UpdateStrategy.RollingUpdate.Partition = int32Ptr(0)
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = int32Ptr(10)
	}
	for i := range s.VolumeClaimTemplates {
		defaultPVC(&s.VolumeClaimTemplates[i])
		s.VolumeClaimTemplates[i].Status = PersistentVolumeClaimStatus{}
	}
	defaultPodTemplate(&s.Template)
}

func validateStatefulSet(obj Object) FieldErrors {
	s := &obj.(*StatefulSet).Spec
	var errs FieldErrors
	if s.Replicas != nil {
		errs.check("spec.replicas", checkNonNegative(int64(*s.Replicas)))
	}
	errs.check("spec.minReadySeconds", checkNonNegative(int64(s.MinReadySeconds)))
	if r := s.RevisionHistoryLimit; r != nil {
		errs.check("spec.revisionHistoryLimit", checkNonNegative(int64(*r)))
	}
	switch s.PodManagementPolicy {
	case "", OrderedReadyPodManagement, ParallelPodManagement:
	default:
		errs.add("spec.podManagementPolicy", oneOf(s.PodManagementPolicy, OrderedReadyPodManagement, ParallelPodManagement))
	}
	switch s.UpdateStrategy.Type {
	case "", RollingUpdateStatefulSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
			errs.check("spec.updateStrategy.rollingUpdate.partition", checkNonNegative(int64(*ru.Partition)))
		}
	case OnDeleteStatefulSetStrategyType:
		if s.UpdateStrategy.RollingUpdate != nil {
			errs.add("spec.updateStrategy.rollingUpdate", "only allowed for updateStrategy RollingUpdate")
		}
	default:
		errs.add("spec.updateStrategy.type", oneOf(s.UpdateStrategy.Type, RollingUpdateStatefulSetStrategyType, OnDeleteStatefulSetStrategyType))
	}
	if s.ServiceName != "" {
		errs.check("spec.serviceName", checkDNSLabel(s.ServiceName))
	}
	names := map[string]bool{}
	for i := range s.VolumeClaimTemplates {
		t := &s.VolumeClaimTemplates[i]
		p := index("spec.volumeClaimTemplates", i)
		switch {
		case t.Name == "":
			errs.add(child(p, "metadata.name"), "required")
		case names[t.Name]:
			errs.addf(child(p, "metadata.name"), "duplicate name %q", t.Name)
		default:
			errs.check(child(p, "metadata.name"), checkDNSLabel(t.Name))
		}
		names[t.Name] = true
		errs = append(errs, validatePVCSpec(child(p, "spec"), &t.Spec)...)
	}
	// A claim template stands in for a volume of the same name in the pod.
	tmpl := s.Template
	for name := range names {
		found := false
		for _, v := range tmpl.Spec.Volumes {
			found = found || v.Name == name
		}
		if !found {
			tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, Volume{Name: name, PersistentVolumeClaim: &PersistentVolumeSource{ClaimName: name}})
		}
	}
	return append(errs, validatePodTemplate(s.Selector, &tmpl)...)
}

// validateStatefulSetUpdate allows changes to replicas, the template, the update
// strategy, minReadySeconds and the retention policy only, as Kubernetes does.
func validateStatefulSetUpdate(oldObj, newObj Object) FieldErrors {
	o, n := oldObj.(*StatefulSet), newObj.(*StatefulSet)
	errs := validateSelectorUnchanged(o.Spec.Selector, n.Spec.Selector)
	if o.Spec.ServiceName != n.Spec.ServiceName {
		errs.immutable("spec.serviceName", o.Spec.ServiceName)
	}
	if o.Spec.PodManagementPolicy != n.Spec.PodManagementPolicy {
		errs.immutable("spec.podManagementPolicy", o.Spec.PodManagementPolicy)
	}
	if fmt.Sprint(claimNames(o.Spec.VolumeClaimTemplates)) != fmt.Sprint(claimNames(n.Spec.VolumeClaimTemplates)) {
		errs.immutable("spec.volumeClaimTemplates", fmt.Sprint(claimNames(o.Spec.VolumeClaimTemplates)))
	}
	return errs
}

func claimNames(ts []PersistentVolumeClaim) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func defaultDaemonSet(obj Object) {
	s := &obj.(*DaemonSet).Spec
	if s.UpdateStrategy.Type == "" {
		s.UpdateStrategy.Type = RollingUpdateDaemonSetStrategyType
	}
	if s.UpdateStrategy.Type == RollingUpdateDaemonSetStrategyType {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{}
		}
		if s.UpdateStrategy.RollingUpdate.MaxUnavailable == nil {
			v := FromInt(1)
			s.UpdateStrategy.RollingUpdate.MaxUnavailable = &v
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = int32Ptr(10)
	}
	defaultPodTemplate(&s.Template)
}

func validateDaemonSet(obj Object) FieldErrors {
	s := &obj.(*DaemonSet).Spec
	var errs FieldErrors
	errs.check("spec.minReadySeconds", checkNonNegative(int64(s.MinReadySeconds)))
	if r := s.RevisionHistoryLimit; r != nil {
		errs.check("spec.revisionHistoryLimit", checkNonNegative(int64(*r)))
	}
	switch s.UpdateStrategy.Type {
	case "", RollingUpdateDaemonSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru != nil {
			if checkIntOrPercent(&errs, "spec.updateStrategy.rollingUpdate.maxUnavailable", ru.MaxUnavailable, true) == 0 {
				errs.add("spec.updateStrategy.rollingUpdate.maxUnavailable", "must not be 0")
			}
		}
	case OnDeleteDaemonSetStrategyType:
	default:
		errs.add("spec.updateStrategy.type", oneOf(s.UpdateStrategy.Type, RollingUpdateDaemonSetStrategyType, OnDeleteDaemonSetStrategyType))
	}
	return append(errs, validatePodTemplate(s.Selector, &s.Template)...)
}

func validateDaemonSetUpdate(oldObj, newObj Object) FieldErrors {
	return validateSelectorUnchanged(oldObj.(*DaemonSet).Spec.Selector, newObj.(*DaemonSet).Spec.Selector)
}

func validateControllerRevision(obj Object) FieldErrors {
	r := obj.(*ControllerRevision)
	var errs FieldErrors
	if r.Data == nil {
		errs.add("data", "required")
	}
	if r.Revision < 1 {
		errs.addf("revision", "%d must be greater than or equal to 1", r.Revision)
	}
	return errs
}

// validateControllerRevisionUpdate keeps the data as it was, as Kubernetes does: a
// revision records a template that existed.
func validateControllerRevisionUpdate(oldObj, newObj Object) FieldErrors {
	o, n := oldObj.(*ControllerRevision), newObj.(*ControllerRevision)
	var errs FieldErrors
	// Compared as JSON, as stored: a decoded quantity may hold its value in another form.
	ob, _ := json.Marshal(o.Data)
	nb, _ := json.Marshal(n.Data)
	if string(ob) != string(nb) {
		errs.add("data", "field is immutable")
	}
	return errs
}

func init() {
	Register(&KindInfo{Kind: "ControllerRevision", Group: "apps", Version: "v1", Resource: "controllerrevisions", Singular: "controllerrevision", Namespaced: true,
		New: func() Object { return &ControllerRevision{} },
		// SET-HASH may pass the 63 characters of a label when the set's name is long.
		SubdomainNames: true,
		Validate:       validateControllerRevision,
		ValidateUpdate: validateControllerRevisionUpdate,
	})
	Register(&KindInfo{Kind: "StatefulSet", Group: "apps", Version: "v1", Resource: "statefulsets", Singular: "statefulset", ShortNames: []string{"sts"}, Namespaced: true,
		New:            func() Object { return &StatefulSet{} },
		Default:        defaultStatefulSet,
		Validate:       validateStatefulSet,
		ValidateUpdate: validateStatefulSetUpdate,
	})
	Register(&KindInfo{Kind: "DaemonSet", Group: "apps", Version: "v1", Resource: "daemonsets", Singular: "daemonset", ShortNames: []string{"ds"}, Namespaced: true,
		New:            func() Object { return &DaemonSet{} },
		Default:        defaultDaemonSet,
		Validate:       validateDaemonSet,
		ValidateUpdate: validateDaemonSetUpdate,
	})
}
