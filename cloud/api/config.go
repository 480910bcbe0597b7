package api

import (
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
)

// ConfigMap holds configuration that pods take as environment variables or files.
type ConfigMap struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
}

// Secret holds small sensitive values. Data is base64 on the wire ([]byte in JSON);
// StringData is a write-only convenience merged into Data when the secret is stored.
type Secret struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Data       map[string][]byte `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
	Type       string            `json:"type,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
}

// SecretTypeOpaque is the default secret type.
const SecretTypeOpaque = "Opaque"

// maxConfigBytes is the most data a ConfigMap or Secret may hold (Kubernetes's limit).
const maxConfigBytes = 1 << 20

var configKeyRe = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

func checkConfigKey(k string) string {
	if len(k) > 253 || !configKeyRe.MatchString(k) || k == "." || k == ".." {
		return strconv.Quote(k) + " must consist of alphanumeric characters, '-', '_' or '.' (at most 253), and may not be '.' or '..'"
	}
	return ""
}

func validateConfigMap(obj Object) FieldErrors {
	cm := obj.(*ConfigMap)
	var errs FieldErrors
	size := 0
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		errs.check(key("data", k), checkConfigKey(k))
		size += len(k) + len(cm.Data[k])
	}
	for _, k := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		errs.check(key("binaryData", k), checkConfigKey(k))
		if _, dup := cm.Data[k]; dup {
			errs.add(key("binaryData", k), "duplicate of a key in data")
		}
		size += len(k) + len(cm.BinaryData[k])
	}
	if size > maxConfigBytes {
		errs.addf("data", "too long: %d bytes, at most %d", size, maxConfigBytes)
	}
	return errs
}

// defaultSecret folds stringData into data, as Kubernetes does on write.
func defaultSecret(obj Object) {
	s := obj.(*Secret)
	if s.Type == "" {
		s.Type = SecretTypeOpaque
	}
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

func validateSecret(obj Object) FieldErrors {
	s := obj.(*Secret)
	var errs FieldErrors
	size := 0
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		errs.check(key("data", k), checkConfigKey(k))
		size += len(k) + len(s.Data[k])
	}
	if size > maxConfigBytes {
		errs.addf("data", "too long: %d bytes, at most %d", size, maxConfigBytes)
	}
	return errs
}

// sameData compares two data maps, taking nil and empty as equal.
func sameData[V any](a, b map[string]V) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// validateConfigMapUpdate refuses changes to the data of a ConfigMap marked immutable.
func validateConfigMapUpdate(old, cur Object) FieldErrors {
	o, n := old.(*ConfigMap), cur.(*ConfigMap)
	var errs FieldErrors
	if o.Immutable != nil && *o.Immutable {
		if !sameData(o.Data, n.Data) || !sameData(o.BinaryData, n.BinaryData) {
			errs.add("data", "field is immutable when `immutable` is set")
		}
		if n.Immutable == nil || !*n.Immutable {
			errs.add("immutable", "field is immutable when `immutable` is set")
		}
	}
	return errs
}

// validateSecretUpdate refuses a type change, and data changes when immutable.
func validateSecretUpdate(old, cur Object) FieldErrors {
	o, n := old.(*Secret), cur.(*Secret)
	var errs FieldErrors
	if o.Type != n.Type {
		errs.immutable("type", o.Type)
	}
	if o.Immutable != nil && *o.Immutable {
		if !sameData(o.Data, n.Data) {
			errs.add("data", "field is immutable when `immutable` is set")
		}
		if n.Immutable == nil || !*n.Immutable {
			errs.add("immutable", "field is immutable when `immutable` is set")
		}
	}
	return errs
}

func init() {
	Register(&KindInfo{Kind: "ConfigMap", Version: "v1", Resource: "configmaps", Singular: "configmap", ShortNames: []string{"cm"}, Namespaced: true,
		New:            func() Object { return &ConfigMap{} },
		Validate:       validateConfigMap,
		ValidateUpdate: validateConfigMapUpdate,
		SubdomainNames: true,
	})
	Register(&KindInfo{Kind: "Secret", Version: "v1", Resource: "secrets", Singular: "secret", Namespaced: true,
		New:            func() Object { return &Secret{} },
		Default:        defaultSecret,
		Validate:       validateSecret,
		ValidateUpdate: validateSecretUpdate,
		SubdomainNames: true,
	})
}
