package api

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Validate checks obj as the API server does before storing it, and returns
// FieldErrors naming every field at fault ("spec.containers[0].image: required"), or
// nil. Call Default first: fields that Default fills may be left empty here. obj must
// be of a registered kind.
func Validate(obj Object) error {
	k, errs := kindForValidation(obj)
	if errs != nil {
		return errs
	}
	errs = append(errs, validateTypeMeta(k, obj.GetTypeMeta())...)
	errs = append(errs, validateObjectMeta(k, obj.GetObjectMeta())...)
	if k.Validate != nil {
		errs = append(errs, k.Validate(obj)...)
	}
	return errs.OrNil()
}

// ValidateUpdate checks that the change from old to new keeps what may not change:
// metadata.name, metadata.namespace and metadata.uid for every kind, and what the
// kind's own rules protect (most of a pod's spec). It does not validate new as a whole:
// the API server calls Validate for that.
func ValidateUpdate(old, new Object) error {
	k, errs := kindForValidation(new)
	if errs != nil {
		return errs
	}
	if oldKind, errs := kindForValidation(old); errs != nil {
		return errs
	} else if oldKind != k {
		return FieldErrors{{Field: "kind", Reason: fmt.Sprintf("may not change from %s to %s", oldKind.Kind, k.Kind)}}
	}
	om, nm := old.GetObjectMeta(), new.GetObjectMeta()
	if nm.Name != om.Name {
		errs.immutable("metadata.name", om.Name)
	}
	if nm.Namespace != om.Namespace {
		errs.immutable("metadata.namespace", om.Namespace)
	}
	if om.UID != "" && nm.UID != om.UID {
		errs.immutable("metadata.uid", om.UID)
	}
	if k.ValidateUpdate != nil {
		errs = append(errs, k.ValidateUpdate(old, new)...)
	}
	return errs.OrNil()
}

func kindForValidation(obj Object) (*KindInfo, FieldErrors) {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return nil, FieldErrors{{Reason: "no object"}}
	}
	k, ok := KindOf(obj)
	if !ok {
		return nil, FieldErrors{{Field: "kind", Reason: fmt.Sprintf("%T is not a registered kind", obj)}}
	}
	return k, nil
}

func validateTypeMeta(k *KindInfo, tm *TypeMeta) FieldErrors {
	var errs FieldErrors
	if tm.Kind != "" && tm.Kind != k.Kind {
		errs.addf("kind", "%q does not match the object, a %s", tm.Kind, k.Kind)
	}
	if tm.APIVersion != "" && canonicalAPIVersion(tm.APIVersion) != k.APIVersion() {
		errs.addf("apiVersion", "%q does not match the object: %s is served as %s", tm.APIVersion, k.Kind, k.APIVersion())
	}
	return errs
}

// canonicalAPIVersion maps a retired group version to the one cloudbox serves.
func canonicalAPIVersion(gv string) string {
	if alias, ok := groupAliases[gv]; ok {
		return alias
	}
	return gv
}

// maxAnnotationsBytes is Kubernetes's limit on the total size of an object's annotations.
const maxAnnotationsBytes = 256 << 10

func validateObjectMeta(k *KindInfo, m *ObjectMeta) FieldErrors {
	var errs FieldErrors
	nameCheck, nameRule := checkDNSLabel, dns1123LabelMsg
	if k.SubdomainNames {
		nameCheck, nameRule = checkDNSSubdomain, dns1123SubdomainMsg
	}
	switch {
	case m.Name != "":
		errs.check("metadata.name", nameCheck(m.Name))
	case m.GenerateName == "":
		errs.add("metadata.name", "required")
	}
	if m.GenerateName != "" {
		// The server appends a random suffix, so the prefix may end in '-'.
		if nameCheck(maskTrailingDash(m.GenerateName)) != "" {
			errs.addf("metadata.generateName", "%q is not a valid name prefix: generated names %s", m.GenerateName, nameRule)
		}
	}
	if m.Namespace != "" {
		if k.Namespaced {
			errs.check("metadata.namespace", checkDNSLabel(m.Namespace))
		} else {
			errs.addf("metadata.namespace", "must be empty: %s are not namespaced", k.Resource)
		}
	}
	errs = append(errs, validateLabels("metadata.labels", m.Labels)...)
	errs = append(errs, validateAnnotations("metadata.annotations", m.Annotations)...)
	for i, ref := range m.OwnerReferences {
		p := index("metadata.ownerReferences", i)
		for _, f := range []struct{ name, val string }{{"apiVersion", ref.APIVersion}, {"kind", ref.Kind}, {"name", ref.Name}, {"uid", ref.UID}} {
			if f.val == "" {
				errs.add(child(p, f.name), "required")
			}
		}
	}
	for i, f := range m.Finalizers {
		errs.check(index("metadata.finalizers", i), checkQualifiedName(f))
	}
	return errs
}

func maskTrailingDash(s string) string {
	if len(s) > 1 && strings.HasSuffix(s, "-") {
		return s[:len(s)-1] + "a"
	}
	return s
}

// ValidateLabels checks label keys and values, naming field in its errors; the server
// uses it on --node-label before it registers anything.
func ValidateLabels(field string, labels map[string]string) error {
	return validateLabels(field, labels).OrNil()
}

// validateLabels checks label keys and values; nodeSelector maps follow the same rules.
func validateLabels(field string, labels map[string]string) FieldErrors {
	var errs FieldErrors
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if msg := checkQualifiedName(k); msg != "" {
			errs.addf(field, "invalid label key: %s", msg)
			continue
		}
		errs.check(key(field, k), checkLabelValue(labels[k]))
	}
	return errs
}

func validateAnnotations(field string, annotations map[string]string) FieldErrors {
	var errs FieldErrors
	total := 0
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		total += len(k) + len(annotations[k])
		if msg := checkQualifiedName(k); msg != "" {
			errs.addf(field, "invalid annotation key: %s", msg)
		}
	}
	if total > maxAnnotationsBytes {
		errs.addf(field, "total size %d must be at most %d bytes", total, maxAnnotationsBytes)
	}
	return errs
}

func validateNamespace(obj Object) FieldErrors {
	ns := obj.(*Namespace)
	var errs FieldErrors
	switch ns.Status.Phase {
	case "", NamespaceActive, NamespaceTerminating:
	default:
		errs.add("status.phase", oneOf(ns.Status.Phase, NamespaceActive, NamespaceTerminating))
	}
	return errs
}

func validateNode(obj Object) FieldErrors {
	n := obj.(*Node)
	var errs FieldErrors
	if n.Spec.PodCIDR != "" {
		if _, err := netip.ParsePrefix(n.Spec.PodCIDR); err != nil {
			errs.addf("spec.podCIDR", "%q is not a CIDR such as 10.88.1.0/24", n.Spec.PodCIDR)
		}
	}
	for i, t := range n.Spec.Taints {
		p := index("spec.taints", i)
		if t.Key == "" {
			errs.add(child(p, "key"), "required")
		} else {
			errs.check(child(p, "key"), checkQualifiedName(t.Key))
		}
		errs.check(child(p, "value"), checkLabelValue(t.Value))
		switch t.Effect {
		case "":
			errs.add(child(p, "effect"), "required")
		case TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute:
		default:
			errs.add(child(p, "effect"), oneOf(t.Effect, TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(n.Status.Capacity)) {
		errs.check(key("status.capacity", name), checkQuantity(n.Status.Capacity[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(n.Status.Allocatable)) {
		errs.check(key("status.allocatable", name), checkQuantity(n.Status.Allocatable[name]))
	}
	return errs
}

// Field paths are written as Kubernetes writes them: "spec.containers[0].ports[1].name",
// "metadata.labels[app]".

func child(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func key(path, k string) string { return path + "[" + k + "]" }

func (l *FieldErrors) add(field, reason string) {
	*l = append(*l, &FieldError{Field: field, Reason: reason})
}

func (l *FieldErrors) addf(field, format string, args ...any) {
	l.add(field, fmt.Sprintf(format, args...))
}

// check adds an error when msg, the answer of one of the check functions, is not empty.
func (l *FieldErrors) check(field, msg string) {
	if msg != "" {
		l.add(field, msg)
	}
}

func (l *FieldErrors) immutable(field, was string) {
	l.addf(field, "field is immutable (was %q)", was)
}

func oneOf(got string, allowed ...string) string {
	return fmt.Sprintf("%q must be one of %s", got, strings.Join(allowed, ", "))
}

// The check functions return "" for a valid value and otherwise the reason, which
// quotes the value.

var (
	dns1123LabelRe     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123SubdomainRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	qualifiedNameRe    = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	ianaSvcNameRe      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	envVarNameRe       = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	hasLetterRe        = regexp.MustCompile(`[a-z]`)
)

const (
	dns1123LabelMsg     = "must be a DNS-1123 label (lower case letters, digits and '-', starting and ending with an alphanumeric, at most 63 characters)"
	dns1123SubdomainMsg = "must be a DNS-1123 subdomain (lower case letters, digits, '-' and '.', starting and ending with an alphanumeric, at most 253 characters)"
	qualifiedNameMsg    = "must be a name of at most 63 characters (letters, digits, '-', '_' and '.', starting and ending with an alphanumeric), optionally after a DNS-1123 subdomain prefix and '/'"
	labelValueMsg       = "must be empty or at most 63 characters (letters, digits, '-', '_' and '.', starting and ending with an alphanumeric)"
	ianaSvcNameMsg      = "must be an IANA service name (at most 15 characters: lower case letters, digits and '-', with at least one letter, neither starting nor ending with '-', no \"--\")"
	envVarNameMsg       = "must be an environment variable name (letters, digits, '-', '.' and '_', not starting with a digit)"
)

func checkDNSLabel(s string) string {
	if len(s) > 63 || !dns1123LabelRe.MatchString(s) {
		return strconv.Quote(s) + " " + dns1123LabelMsg
	}
	return ""
}

func checkDNSSubdomain(s string) string {
	if len(s) > 253 || !dns1123SubdomainRe.MatchString(s) {
		return strconv.Quote(s) + " " + dns1123SubdomainMsg
	}
	return ""
}

// checkQualifiedName checks a label, annotation or finalizer key: "app",
// "app.kubernetes.io/name".
func checkQualifiedName(s string) string {
	name := s
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		prefix := s[:i]
		name = s[i+1:]
		if prefix == "" || len(prefix) > 253 || !dns1123SubdomainRe.MatchString(prefix) {
			return strconv.Quote(s) + " " + qualifiedNameMsg
		}
	}
	if name == "" || len(name) > 63 || !qualifiedNameRe.MatchString(name) {
		return strconv.Quote(s) + " " + qualifiedNameMsg
	}
	return ""
}

func checkLabelValue(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > 63 || !qualifiedNameRe.MatchString(s) {
		return strconv.Quote(s) + " " + labelValueMsg
	}
	return ""
}

func checkIANASvcName(s string) string {
	if len(s) > 15 || !ianaSvcNameRe.MatchString(s) || !hasLetterRe.MatchString(s) || strings.Contains(s, "--") {
		return strconv.Quote(s) + " " + ianaSvcNameMsg
	}
	return ""
}

func checkEnvVarName(s string) string {
	if !envVarNameRe.MatchString(s) || s == "." || s == ".." || strings.HasPrefix(s, "..") {
		return strconv.Quote(s) + " " + envVarNameMsg
	}
	return ""
}

func checkPort(p int32) string {
	if p < 1 || p > 65535 {
		return fmt.Sprintf("%d must be between 1 and 65535", p)
	}
	return ""
}

func checkQuantity(q Quantity) string {
	if q.MilliValue() < 0 {
		return fmt.Sprintf("%s must not be negative", q)
	}
	return ""
}

func checkNonNegative(n int64) string {
	if n < 0 {
		return fmt.Sprintf("%d must be greater than or equal to 0", n)
	}
	return ""
}
