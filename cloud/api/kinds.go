package api

import (
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
)

// KindInfo describes one kind of object: where it lives in the REST tree, how to make
// an empty one, and the names people type for it.
type KindInfo struct {
	Kind       string // "Pod"
	Group      string // "" for the core group, "apps", "batch", "compute"
	Version    string // "v1"
	Resource   string // plural, lower case: "pods"; also the store bucket name
	Singular   string // "pod"
	ShortNames []string
	Namespaced bool
	// New returns a pointer to an empty object of this kind.
	New func() Object
	// SubdomainNames says object names are DNS-1123 subdomains (up to 253 characters,
	// dots allowed), as node names are; when false they are DNS-1123 labels.
	SubdomainNames bool

	// The hooks below are optional; a nil hook means the kind has nothing of that sort.
	// Each is called with an object of this kind only.

	// Default fills the kind's defaults in place; see Default.
	Default func(Object)
	// Validate checks what is particular to the kind; metadata is checked by Validate.
	Validate func(Object) FieldErrors
	// ValidateUpdate checks what may not change from old to new, beyond the metadata
	// rules ValidateUpdate applies to every kind.
	ValidateUpdate func(old, new Object) FieldErrors
	// Fields returns the kind's selectable fields beyond metadata.name and
	// metadata.namespace (field selectors). It must return every key it knows even
	// when the value is empty: the keys of Fields(New()) are the supported fields.
	Fields func(Object) map[string]string
}

// APIVersion is "v1" for the core group and "group/version" otherwise.
func (k *KindInfo) APIVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

// kinds is the registry, filled by Register from each type's file.
var (
	kinds       []*KindInfo
	kindsByName = map[string]*KindInfo{}
	kindsByType = map[reflect.Type]*KindInfo{}
)

// groupAliases maps retired group versions to the one cloudbox serves, so that older
// manifests apply unchanged.
var groupAliases = map[string]string{
	"apps/v1beta1":       "apps/v1",
	"apps/v1beta2":       "apps/v1",
	"extensions/v1beta1": "apps/v1",
	"batch/v1beta1":      "batch/v1",
}

// GroupAliases returns the retired group versions that are read as a served one,
// each with the one it is read as: "apps/v1beta2" → "apps/v1".
func GroupAliases() map[string]string { return maps.Clone(groupAliases) }

// Register adds a kind to the registry. It is called from init functions only.
func Register(k *KindInfo) {
	for _, name := range append([]string{k.Kind, k.Resource, k.Singular}, k.ShortNames...) {
		key := strings.ToLower(name)
		// A kind's own names may coincide ("Pod" and "pod"); another kind's may not.
		if other, dup := kindsByName[key]; dup && other != k {
			panic("api: kind name registered twice: " + name)
		}
		kindsByName[key] = k
	}
	t := reflect.TypeOf(k.New())
	if _, dup := kindsByType[t]; dup {
		panic("api: type registered twice: " + t.String())
	}
	kindsByType[t] = k
	kinds = append(kinds, k)
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].Resource < kinds[j].Resource })
}

// Kinds returns every registered kind, sorted by resource name.
func Kinds() []*KindInfo { return append([]*KindInfo(nil), kinds...) }

// LookupKind finds a kind by any of its names, case-insensitively: "Pod", "pods",
// "pod", "po". The second result is false when nothing matches.
func LookupKind(name string) (*KindInfo, bool) {
	k, ok := kindsByName[strings.ToLower(name)]
	return k, ok
}

// KindOf returns the registered kind of obj's Go type, whatever its TypeMeta says. The
// second result is false for nil and for types no kind was registered with.
func KindOf(obj Object) (*KindInfo, bool) {
	if obj == nil {
		return nil, false
	}
	k, ok := kindsByType[reflect.TypeOf(obj)]
	return k, ok
}

// LookupResource finds the kind served at group/version/resource in the REST tree.
func LookupResource(group, version, resource string) (*KindInfo, bool) {
	gv := version
	if group != "" {
		gv = group + "/" + version
	}
	if alias, ok := groupAliases[gv]; ok {
		gv = alias
	}
	for _, k := range kinds {
		if k.Resource == resource && k.APIVersion() == gv {
			return k, true
		}
	}
	return nil, false
}

// KindFor resolves an apiVersion and kind as written in a manifest. Retired group
// versions are accepted as aliases; anything unknown gets an error that says what is
// served.
func KindFor(apiVersion, kind string) (*KindInfo, error) {
	if kind == "" {
		return nil, &FieldError{Field: "kind", Reason: "required"}
	}
	if apiVersion == "" {
		return nil, &FieldError{Field: "apiVersion", Reason: "required"}
	}
	gv := apiVersion
	if alias, ok := groupAliases[gv]; ok {
		gv = alias
	}
	for _, k := range kinds {
		if k.Kind == kind {
			if k.APIVersion() != gv {
				return nil, &FieldError{Field: "apiVersion", Reason: fmt.Sprintf("kind %s is served as %s, not %s", kind, k.APIVersion(), apiVersion)}
			}
			return k, nil
		}
	}
	names := make([]string, 0, len(kinds))
	for _, k := range kinds {
		names = append(names, k.Kind)
	}
	sort.Strings(names)
	return nil, &FieldError{Field: "kind", Reason: fmt.Sprintf("unknown kind %q in %s (cloudbox serves: %s)", kind, apiVersion, strings.Join(names, ", "))}
}

// NewObject returns an empty object of the kind with its TypeMeta filled.
func (k *KindInfo) NewObject() Object {
	o := k.New()
	*o.GetTypeMeta() = TypeMeta{APIVersion: k.APIVersion(), Kind: k.Kind}
	return o
}

func init() {
	Register(&KindInfo{Kind: "Namespace", Version: "v1", Resource: "namespaces", Singular: "namespace", ShortNames: []string{"ns"},
		New:      func() Object { return &Namespace{} },
		Default:  defaultNamespace,
		Validate: validateNamespace,
	})
	Register(&KindInfo{Kind: "Node", Version: "v1", Resource: "nodes", Singular: "node", ShortNames: []string{"no"},
		New:            func() Object { return &Node{} },
		SubdomainNames: true,
		Validate:       validateNode,
		Fields:         nodeFields,
	})
	Register(&KindInfo{Kind: "Pod", Version: "v1", Resource: "pods", Singular: "pod", ShortNames: []string{"po"}, Namespaced: true,
		New:            func() Object { return &Pod{} },
		Default:        defaultPod,
		Validate:       validatePod,
		ValidateUpdate: validatePodUpdate,
		Fields:         podFields,
	})
}
