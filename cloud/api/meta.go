// Package api holds cloudbox's object model: Kubernetes-shaped objects (apiVersion,
// kind, metadata, spec, status), their defaults, their validation, and the decoding of
// manifests. It imports nothing of the project, so every other package can use it.
package api

import (
	"fmt"
	"time"
)

// TypeMeta names an object's kind and API version, as every manifest does.
type TypeMeta struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// ObjectMeta is the metadata every stored object carries. The store sets UID,
// CreationTimestamp and ResourceVersion; clients set the rest.
type ObjectMeta struct {
	Name              string `json:"name,omitempty"`
	GenerateName      string `json:"generateName,omitempty"`
	Namespace         string `json:"namespace,omitempty"`
	UID               string `json:"uid,omitempty"`
	ResourceVersion   string `json:"resourceVersion,omitempty"`
	Generation        int64  `json:"generation,omitempty"`
	CreationTimestamp *Time  `json:"creationTimestamp,omitempty"`
	DeletionTimestamp *Time  `json:"deletionTimestamp,omitempty"`
	// DeletionGracePeriodSeconds is how long a pod being deleted has to stop.
	DeletionGracePeriodSeconds *int64            `json:"deletionGracePeriodSeconds,omitempty"`
	Labels                     map[string]string `json:"labels,omitempty"`
	Annotations                map[string]string `json:"annotations,omitempty"`
	OwnerReferences            []OwnerReference  `json:"ownerReferences,omitempty"`
	Finalizers                 []string          `json:"finalizers,omitempty"`
}

// OwnerReference points from a dependent object to the object that owns it.
type OwnerReference struct {
	APIVersion         string `json:"apiVersion"`
	Kind               string `json:"kind"`
	Name               string `json:"name"`
	UID                string `json:"uid"`
	Controller         *bool  `json:"controller,omitempty"`
	BlockOwnerDeletion *bool  `json:"blockOwnerDeletion,omitempty"`
}

// ListMeta is the metadata of a list answer: the revision it was read at, and the
// token that continues a paginated list.
type ListMeta struct {
	ResourceVersion    string `json:"resourceVersion,omitempty"`
	Continue           string `json:"continue,omitempty"`
	RemainingItemCount *int64 `json:"remainingItemCount,omitempty"`
}

// Time is a timestamp that encodes as RFC 3339 in UTC with second precision, as
// Kubernetes does, so manifests and outputs read the same.
type Time struct{ time.Time }

// Now returns the current time as a *Time.
func Now() *Time { return &Time{time.Now().UTC().Truncate(time.Second)} }

// NewTime wraps t.
func NewTime(t time.Time) *Time { return &Time{t.UTC().Truncate(time.Second)} }

// MarshalJSON encodes the time as an RFC 3339 string, or null when zero.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(time.RFC3339) + `"`), nil
}

// UnmarshalJSON accepts an RFC 3339 string (with or without fractions) or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" || s == `""` {
		t.Time = time.Time{}
		return nil
	}
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return &FieldError{Field: "", Reason: "time must be an RFC 3339 string"}
	}
	p, err := time.Parse(time.RFC3339Nano, s[1:len(s)-1])
	if err != nil {
		return &FieldError{Field: "", Reason: fmt.Sprintf("time %s is not an RFC 3339 time such as \"2006-01-02T15:04:05Z\"", s)}
	}
	// An offset can carry a time past a four-digit year in UTC, which RFC 3339 (and so
	// MarshalJSON's output) cannot write.
	if y := p.UTC().Year(); y < 0 || y > 9999 {
		return &FieldError{Field: "", Reason: fmt.Sprintf("time %s is outside the years 0000-9999 in UTC", s)}
	}
	t.Time = p.UTC()
	return nil
}

// Object is any top-level API object: it has type and object metadata.
type Object interface {
	GetTypeMeta() *TypeMeta
	GetObjectMeta() *ObjectMeta
}

// GetTypeMeta returns the object's type metadata; it makes every struct that embeds
// TypeMeta satisfy part of Object.
func (t *TypeMeta) GetTypeMeta() *TypeMeta { return t }

// GetObjectMeta returns the object's metadata; embedding ObjectMeta as Metadata
// through ObjectHeader gives the other half of Object.
func (m *ObjectMeta) GetObjectMeta() *ObjectMeta { return m }

// Key returns "namespace/name", or "name" for a cluster-scoped object: the key the
// store files the object under.
func (m *ObjectMeta) Key() string {
	if m.Namespace == "" {
		return m.Name
	}
	return m.Namespace + "/" + m.Name
}

// IsControlledBy reports whether the object's controller owner reference names uid.
func (m *ObjectMeta) IsControlledBy(uid string) bool {
	ref := m.ControllerRef()
	return ref != nil && ref.UID == uid
}

// ControllerRef returns the owner reference marked as controller, or nil.
func (m *ObjectMeta) ControllerRef() *OwnerReference {
	for i := range m.OwnerReferences {
		if c := m.OwnerReferences[i].Controller; c != nil && *c {
			return &m.OwnerReferences[i]
		}
	}
	return nil
}
