package api

import "reflect"

// PersistentVolumeClaim asks for storage that outlives the pods using it. cloudbox
// binds a claim to a local directory on the node where the first pod using it runs
// (StateDir/volumes/<namespace>/<claim-uid>): that node's agent sets the claim Bound
// and records the node in AnnotationVolumeNode, and later pods using the claim must
// run on that node.
type PersistentVolumeClaim struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       PersistentVolumeClaimSpec   `json:"spec,omitempty"`
	Status     PersistentVolumeClaimStatus `json:"status,omitempty"`
}

// PersistentVolumeClaimSpec is what the claim asks for. Only the local provisioner
// exists: storageClassName is recorded and the requested size is not enforced.
type PersistentVolumeClaimSpec struct {
	AccessModes      []string                   `json:"accessModes,omitempty"`
	Resources        VolumeResourceRequirements `json:"resources,omitempty"`
	StorageClassName *string                    `json:"storageClassName,omitempty"`
	VolumeName       string                     `json:"volumeName,omitempty"`
	VolumeMode       string                     `json:"volumeMode,omitempty"`
}

// VolumeResourceRequirements is a claim's requested (and limited) size.
type VolumeResourceRequirements struct {
	Requests ResourceList `json:"requests,omitempty"`
	Limits   ResourceList `json:"limits,omitempty"`
}

// PersistentVolumeClaimStatus says whether the claim is bound, and how big it is.
type PersistentVolumeClaimStatus struct {
	Phase       string       `json:"phase,omitempty"`
	AccessModes []string     `json:"accessModes,omitempty"`
	Capacity    ResourceList `json:"capacity,omitempty"`
}

// Claim phases and access modes.
const (
	ClaimPending = "Pending"
	ClaimBound   = "Bound"
	ClaimLost    = "Lost"

	ReadWriteOnce    = "ReadWriteOnce"
	ReadOnlyMany     = "ReadOnlyMany"
	ReadWriteMany    = "ReadWriteMany"
	ReadWriteOncePod = "ReadWriteOncePod"

	// ResourceStorage is the resource name of a claim's size.
	ResourceStorage = "storage"

	// AnnotationVolumeNode names the node whose local volume a bound claim is.
	AnnotationVolumeNode = "volume.cloudbox.io/node"
)

// BoundNode returns the node the claim's volume lives on, or "" while unbound.
func (c *PersistentVolumeClaim) BoundNode() string {
	return c.Annotations[AnnotationVolumeNode]
}

func defaultPVC(obj Object) {
	c := obj.(*PersistentVolumeClaim)
	if c.Spec.VolumeMode == "" {
		c.Spec.VolumeMode = "Filesystem"
	}
	if c.Status.Phase == "" {
		c.Status.Phase = ClaimPending
	}
}

func validatePVC(obj Object) FieldErrors {
	c := obj.(*PersistentVolumeClaim)
	return validatePVCSpec("spec", &c.Spec)
}

func validatePVCSpec(p string, s *PersistentVolumeClaimSpec) FieldErrors {
	var errs FieldErrors
	if len(s.AccessModes) == 0 {
		errs.add(child(p, "accessModes"), "at least 1 access mode is required")
	}
	for i, m := range s.AccessModes {
		switch m {
		case ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod:
		default:
			errs.add(index(child(p, "accessModes"), i), oneOf(m, ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod))
		}
	}
	q, ok := s.Resources.Requests[ResourceStorage]
	if !ok {
		errs.add(child(p, "resources.requests[storage]"), "required")
	} else {
		errs.check(child(p, "resources.requests[storage]"), checkQuantity(q))
	}
	if s.VolumeMode != "" && s.VolumeMode != "Filesystem" {
		errs.add(child(p, "volumeMode"), "only Filesystem is supported")
	}
	return errs
}

// validatePVCUpdate keeps the spec, except the size (which may grow) and a
// volumeName being set for the first time.
func validatePVCUpdate(oldObj, newObj Object) FieldErrors {
	o, n := oldObj.(*PersistentVolumeClaim), newObj.(*PersistentVolumeClaim)
	var errs FieldErrors
	a, b := o.Spec, n.Spec
	a.Resources, b.Resources = VolumeResourceRequirements{}, VolumeResourceRequirements{}
	if a.VolumeName == "" {
		b.VolumeName = ""
	}
	if !reflect.DeepEqual(a, b) {
		errs.add("spec", "is immutable after creation except resources.requests for bound claims")
	}
	return errs
}

func pvcFields(obj Object) map[string]string {
	c := obj.(*PersistentVolumeClaim)
	return map[string]string{"status.phase": c.Status.Phase}
}

func init() {
	Register(&KindInfo{Kind: "PersistentVolumeClaim", Version: "v1", Resource: "persistentvolumeclaims", Singular: "persistentvolumeclaim",
		ShortNames: []string{"pvc"}, Namespaced: true, SubdomainNames: true,
		New:            func() Object { return &PersistentVolumeClaim{} },
		Default:        defaultPVC,
		Validate:       validatePVC,
		ValidateUpdate: validatePVCUpdate,
		Fields:         pvcFields,
	})
}
