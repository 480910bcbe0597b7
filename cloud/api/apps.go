package api

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// PodTemplateSpec is shared with batch.go (Jobs), which declares it.

// ReplicaSet keeps a number of identical pods running.
type ReplicaSet struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ReplicaSetSpec   `json:"spec"`
	Status     ReplicaSetStatus `json:"status,omitempty"`
}

// ReplicaSetSpec is the desired state of a ReplicaSet.
type ReplicaSetSpec struct {
	// Replicas is how many pods to keep; nil means 1 (Default fills it).
	Replicas *int32 `json:"replicas,omitempty"`
	// MinReadySeconds is how long a pod must have been Ready to count as available.
	MinReadySeconds int32 `json:"minReadySeconds,omitempty"`
	// Selector picks the pods the ReplicaSet owns; it must match Template's labels.
	Selector *LabelSelector  `json:"selector"`
	Template PodTemplateSpec `json:"template"`
}

// ReplicaSetStatus is what the ReplicaSet controller observed.
type ReplicaSetStatus struct {
	Replicas             int32                 `json:"replicas"`
	FullyLabeledReplicas int32                 `json:"fullyLabeledReplicas,omitempty"`
	ReadyReplicas        int32                 `json:"readyReplicas,omitempty"`
	AvailableReplicas    int32                 `json:"availableReplicas,omitempty"`
	ObservedGeneration   int64                 `json:"observedGeneration,omitempty"`
	Conditions           []ReplicaSetCondition `json:"conditions,omitempty"`
}

// ReplicaSetCondition is one observed aspect of a ReplicaSet (ReplicaFailure).
type ReplicaSetCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	LastTransitionTime *Time  `json:"lastTransitionTime,omitempty"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
}

// Deployment rolls a pod template out through one ReplicaSet per template revision.
type Deployment struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       DeploymentSpec   `json:"spec"`
	Status     DeploymentStatus `json:"status,omitempty"`
}

// DeploymentSpec is the desired state of a Deployment. Default fills every pointer.
type DeploymentSpec struct {
	Replicas                *int32             `json:"replicas,omitempty"`
	Selector                *LabelSelector     `json:"selector"`
	Template                PodTemplateSpec    `json:"template"`
	Strategy                DeploymentStrategy `json:"strategy,omitempty"`
	MinReadySeconds         int32              `json:"minReadySeconds,omitempty"`
	RevisionHistoryLimit    *int32             `json:"revisionHistoryLimit,omitempty"`
	Paused                  bool               `json:"paused,omitempty"`
	ProgressDeadlineSeconds *int32             `json:"progressDeadlineSeconds,omitempty"`
}

// DeploymentStrategy says how old pods are replaced by new ones.
type DeploymentStrategy struct {
	// Type is RollingUpdate or Recreate.
	Type string `json:"type,omitempty"`
	// RollingUpdate is set only when Type is RollingUpdate.
	RollingUpdate *RollingUpdateDeployment `json:"rollingUpdate,omitempty"`
}

// RollingUpdateDeployment bounds a rolling update: how many pods may be missing and
// how many may be extra, as numbers or percentages of spec.replicas.
type RollingUpdateDeployment struct {
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
	MaxSurge       *IntOrString `json:"maxSurge,omitempty"`
}

// DeploymentStatus is what the Deployment controller observed.
type DeploymentStatus struct {
	ObservedGeneration  int64                 `json:"observedGeneration,omitempty"`
	Replicas            int32                 `json:"replicas,omitempty"`
	UpdatedReplicas     int32                 `json:"updatedReplicas,omitempty"`
	ReadyReplicas       int32                 `json:"readyReplicas,omitempty"`
	AvailableReplicas   int32                 `json:"availableReplicas,omitempty"`
	UnavailableReplicas int32                 `json:"unavailableReplicas,omitempty"`
	Conditions          []DeploymentCondition `json:"conditions,omitempty"`
	CollisionCount      *int32                `json:"collisionCount,omitempty"`
}

// DeploymentCondition is one observed aspect of a Deployment: Available or Progressing.
type DeploymentCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	LastUpdateTime     *Time  `json:"lastUpdateTime,omitempty"`
	LastTransitionTime *Time  `json:"lastTransitionTime,omitempty"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
}

// Deployment strategies, condition types and reasons, and the label and annotations
// the Deployment controller sets.
const (
	RollingUpdateStrategy = "RollingUpdate"
	RecreateStrategy      = "Recreate"

	DeploymentAvailable      = "Available"
	DeploymentProgressing    = "Progressing"
	DeploymentReplicaFailure = "ReplicaFailure"

	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonNewReplicaSetCreated       = "NewReplicaSetCreated"
	ReasonFoundNewReplicaSet         = "FoundNewReplicaSet"
	ReasonReplicaSetUpdated          = "ReplicaSetUpdated"
	ReasonNewReplicaSetAvailable     = "NewReplicaSetAvailable"
	ReasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
	ReasonDeploymentPaused           = "DeploymentPaused"
	ReasonDeploymentResumed          = "DeploymentResumed"

	// LabelPodTemplateHash tells a Deployment's ReplicaSets (and their pods) apart.
	LabelPodTemplateHash = "pod-template-hash"
	// AnnotationRevision numbers a Deployment's template revisions, on the Deployment
	// and on each of its ReplicaSets.
	AnnotationRevision = "deployment.kubernetes.io/revision"
	// AnnotationChangeCause is what `rollout history` shows for a revision.
	AnnotationChangeCause = "kubernetes.io/change-cause"

	DefaultRevisionHistoryLimit    = 10
	DefaultProgressDeadlineSeconds = 600
)

// Condition returns the deployment condition of type t, or nil.
func (s *DeploymentStatus) Condition(t string) *DeploymentCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// SetCondition adds or replaces the condition of c.Type. The transition time is kept
// when the status did not change; LastUpdateTime is taken from c (now if nil).
func (s *DeploymentStatus) SetCondition(c DeploymentCondition) {
	if c.LastUpdateTime == nil {
		c.LastUpdateTime = Now()
	}
	old := s.Condition(c.Type)
	if old == nil {
		if c.LastTransitionTime == nil {
			c.LastTransitionTime = c.LastUpdateTime
		}
		s.Conditions = append(s.Conditions, c)
		return
	}
	if old.Status == c.Status {
		c.LastTransitionTime = old.LastTransitionTime
	} else if c.LastTransitionTime == nil {
		c.LastTransitionTime = c.LastUpdateTime
	}
	*old = c
}

// ScaledValue resolves an IntOrString that is a number or a percentage ("25%") of
// total, rounding percentages up or down. A nil v gives 0.
func ScaledValue(v *IntOrString, total int, roundUp bool) (int, error) {
	if v == nil {
		return 0, nil
	}
	if !v.IsStr {
		return int(v.IntVal), nil
	}
	p, ok := strings.CutSuffix(v.StrVal, "%")
	n, err := strconv.Atoi(p)
	if !ok || err != nil {
		return 0, fmt.Errorf("%q is neither a number nor a percentage", v.StrVal)
	}
	f := float64(n) * float64(total) / 100
	if roundUp {
		return int(math.Ceil(f)), nil
	}
	return int(math.Floor(f)), nil
}

// MaxSurgeAndUnavailable resolves a rolling update's bounds against replicas: surge
// rounds up, unavailable down, and when both come to 0 unavailable is 1 so that the
// rollout can progress, as Kubernetes does.
func (d *Deployment) MaxSurgeAndUnavailable() (surge, unavailable int) {
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != RollingUpdateStrategy || ru == nil {
		return 0, 0
	}
	replicas := int(Int32Value(d.Spec.Replicas, 1))
	surge, _ = ScaledValue(ru.MaxSurge, replicas, true)
	unavailable, _ = ScaledValue(ru.MaxUnavailable, replicas, false)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, min(unavailable, replicas)
}

// Int32Value returns *p, or def when p is nil.
func Int32Value(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func init() {
	Register(&KindInfo{Kind: "ReplicaSet", Group: "apps", Version: "v1", Resource: "replicasets", Singular: "replicaset", ShortNames: []string{"rs"}, Namespaced: true,
		New:            func() Object { return &ReplicaSet{} },
		Default:        defaultReplicaSet,
		Validate:       validateReplicaSet,
		ValidateUpdate: validateReplicaSetUpdate,
	})
	Register(&KindInfo{Kind: "Deployment", Group: "apps", Version: "v1", Resource: "deployments", Singular: "deployment", ShortNames: []string{"deploy"}, Namespaced: true,
		New:            func() Object { return &Deployment{} },
		Default:        defaultDeployment,
		Validate:       validateDeployment,
		ValidateUpdate: validateDeploymentUpdate,
	})
}

func int32Ptr(n int32) *int32 { return &n }

// defaultPodTemplate fills the template's pod spec as a pod's would be filled, so that
// the template a controller stores is what its pods will be.
func defaultPodTemplate(t *PodTemplateSpec) {
	p := &Pod{Spec: t.Spec}
	defaultPod(p)
	t.Spec = p.Spec
}

func defaultReplicaSet(obj Object) {
	rs := obj.(*ReplicaSet)
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = int32Ptr(1)
	}
	defaultPodTemplate(&rs.Spec.Template)
}

func defaultDeployment(obj Object) {
	d := obj.(*Deployment)
	s := &d.Spec
	if s.Replicas == nil {
		s.Replicas = int32Ptr(1)
	}
	if s.Strategy.Type == "" {
		s.Strategy.Type = RollingUpdateStrategy
	}
	if s.Strategy.Type == RollingUpdateStrategy {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &RollingUpdateDeployment{}
		}
		ru := s.Strategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			v := FromString("25%")
			ru.MaxUnavailable = &v
		}
		if ru.MaxSurge == nil {
			v := FromString("25%")
			ru.MaxSurge = &v
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = int32Ptr(DefaultRevisionHistoryLimit)
	}
	if s.ProgressDeadlineSeconds == nil {
		s.ProgressDeadlineSeconds = int32Ptr(DefaultProgressDeadlineSeconds)
	}
	defaultPodTemplate(&s.Template)
}

// validatePodTemplate checks a controller's selector and template: the selector is
// required and not empty, it matches the template's labels, and the template is a
// valid pod whose restartPolicy is Always.
func validatePodTemplate(sel *LabelSelector, t *PodTemplateSpec) FieldErrors {
	var errs FieldErrors
	switch {
	case sel == nil:
		errs.add("spec.selector", "required")
	case len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0:
		errs.add("spec.selector", "empty selector is invalid for this kind")
	default:
		if serrs := ValidateLabelSelector("spec.selector", sel); len(serrs) > 0 {
			errs = append(errs, serrs...)
		} else if s, err := sel.AsSelector(); err == nil && !s.Matches(t.Metadata.Labels) {
			errs.add("spec.template.metadata.labels", "does not match spec.selector")
		}
	}
	errs = append(errs, validateLabels("spec.template.metadata.labels", t.Metadata.Labels)...)
	errs = append(errs, validateAnnotations("spec.template.metadata.annotations", t.Metadata.Annotations)...)
	for _, e := range validatePod(&Pod{Spec: t.Spec}) {
		e.Field = "spec.template." + e.Field
		errs = append(errs, e)
	}
	if t.Spec.RestartPolicy != "" && t.Spec.RestartPolicy != RestartAlways {
		errs.addf("spec.template.spec.restartPolicy", "%q is not supported; only Always is", t.Spec.RestartPolicy)
	}
	return errs
}

func validateReplicaSet(obj Object) FieldErrors {
	rs := obj.(*ReplicaSet)
	var errs FieldErrors
	if r := rs.Spec.Replicas; r != nil {
		errs.check("spec.replicas", checkNonNegative(int64(*r)))
	}
	errs.check("spec.minReadySeconds", checkNonNegative(int64(rs.Spec.MinReadySeconds)))
	return append(errs, validatePodTemplate(rs.Spec.Selector, &rs.Spec.Template)...)
}

func validateDeployment(obj Object) FieldErrors {
	d := obj.(*Deployment)
	s := &d.Spec
	var errs FieldErrors
	if r := s.Replicas; r != nil {
		errs.check("spec.replicas", checkNonNegative(int64(*r)))
	}
	errs.check("spec.minReadySeconds", checkNonNegative(int64(s.MinReadySeconds)))
	if r := s.RevisionHistoryLimit; r != nil {
		errs.check("spec.revisionHistoryLimit", checkNonNegative(int64(*r)))
	}
	if p := s.ProgressDeadlineSeconds; p != nil {
		if *p <= s.MinReadySeconds {
			errs.addf("spec.progressDeadlineSeconds", "%d must be greater than minReadySeconds (%d)", *p, s.MinReadySeconds)
		}
	}
	switch s.Strategy.Type {
	case "", RollingUpdateStrategy:
		if ru := s.Strategy.RollingUpdate; ru != nil {
			surge := checkIntOrPercent(&errs, "spec.strategy.rollingUpdate.maxSurge", ru.MaxSurge, false)
			unavail := checkIntOrPercent(&errs, "spec.strategy.rollingUpdate.maxUnavailable", ru.MaxUnavailable, true)
			if surge == 0 && unavail == 0 && ru.MaxSurge != nil && ru.MaxUnavailable != nil {
				errs.add("spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when maxSurge is 0")
			}
		}
	case RecreateStrategy:
		if s.Strategy.RollingUpdate != nil {
			errs.add("spec.strategy.rollingUpdate", "may not be specified when strategy type is Recreate")
		}
	default:
		errs.add("spec.strategy.type", oneOf(s.Strategy.Type, RollingUpdateStrategy, RecreateStrategy))
	}
	return append(errs, validatePodTemplate(s.Selector, &s.Template)...)
}

// checkIntOrPercent checks a non-negative number or a percentage (at most 100% when
// capped) and returns its value for a literal 0 test: the number, or the percentage.
func checkIntOrPercent(errs *FieldErrors, field string, v *IntOrString, capped bool) int {
	if v == nil {
		return -1
	}
	if !v.IsStr {
		if v.IntVal < 0 {
			errs.addf(field, "%d must be greater than or equal to 0", v.IntVal)
		}
		return int(v.IntVal)
	}
	p, ok := strings.CutSuffix(v.StrVal, "%")
	n, err := strconv.Atoi(p)
	if !ok || err != nil || n < 0 {
		errs.addf(field, "%q must be a non-negative number or a percentage such as \"25%%\"", v.StrVal)
		return -1
	}
	if capped && n > 100 {
		errs.addf(field, "%q must not be greater than 100%%", v.StrVal)
	}
	return n
}

func validateSelectorUnchanged(old, new *LabelSelector) FieldErrors {
	var errs FieldErrors
	if normalSelector(old) != normalSelector(new) {
		was, _ := json.Marshal(old)
		errs.immutable("spec.selector", string(was))
	}
	return errs
}

// normalSelector makes nil and empty maps and lists compare equal.
func normalSelector(s *LabelSelector) string {
	if s == nil {
		return ""
	}
	sel, err := s.AsSelector()
	if err != nil {
		b, _ := json.Marshal(s)
		return string(b)
	}
	return sel.String()
}

func validateReplicaSetUpdate(oldObj, newObj Object) FieldErrors {
	return validateSelectorUnchanged(oldObj.(*ReplicaSet).Spec.Selector, newObj.(*ReplicaSet).Spec.Selector)
}

func validateDeploymentUpdate(oldObj, newObj Object) FieldErrors {
	return validateSelectorUnchanged(oldObj.(*Deployment).Spec.Selector, newObj.(*Deployment).Spec.Selector)
}
