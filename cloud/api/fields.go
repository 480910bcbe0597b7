package api

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// FieldRequirement is one condition of a field selector: "spec.nodeName=node1".
type FieldRequirement struct {
	Field    string
	Operator SelectorOp // OpEquals or OpNotEquals
	Value    string
}

// FieldSelector selects objects by a few of their fields (see FieldsOf): every
// requirement must hold. The zero value selects everything. It is immutable and safe
// for concurrent use.
type FieldSelector struct {
	reqs []FieldRequirement
}

// Matches reports whether fields, as FieldsOf returns them, satisfy every requirement.
// A field absent from fields has the empty value.
func (s FieldSelector) Matches(fields map[string]string) bool {
	for _, r := range s.reqs {
		if (fields[r.Field] == r.Value) != (r.Operator == OpEquals) {
			return false
		}
	}
	return true
}

// Empty reports whether the selector has no requirement.
func (s FieldSelector) Empty() bool { return len(s.reqs) == 0 }

// Requirements returns a copy of the selector's requirements, in the order written.
func (s FieldSelector) Requirements() []FieldRequirement { return slices.Clone(s.reqs) }

// RequiresExactMatch returns the value the selector requires of field with "=", so a
// caller can use an index ("spec.nodeName=node1" lists one node's pods).
func (s FieldSelector) RequiresExactMatch(field string) (string, bool) {
	for _, r := range s.reqs {
		if r.Field == field && r.Operator == OpEquals {
			return r.Value, true
		}
	}
	return "", false
}

// String writes the selector in the syntax ParseFieldSelector reads.
func (s FieldSelector) String() string {
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		parts[i] = r.Field + string(r.Operator) + escapeFieldValue(r.Value)
	}
	return strings.Join(parts, ",")
}

// ParseFieldSelector reads a field selector such as "spec.nodeName=node1,status.phase!=Failed":
// comma-joined "field=value", "field==value" or "field!=value" terms, where a value
// escapes ',', '=' and '\' with a backslash. The empty string selects everything.
// A field no registered kind supports is an error that lists the supported ones.
func ParseFieldSelector(s string) (FieldSelector, error) {
	return parseFieldSelector(s, allSelectableFields())
}

// ParseFieldSelectorForKind is ParseFieldSelector accepting only the fields of kind k.
func ParseFieldSelectorForKind(k *KindInfo, s string) (FieldSelector, error) {
	return parseFieldSelector(s, slices.Sorted(maps.Keys(fieldsOfKind(k, k.New()))))
}

func parseFieldSelector(s string, supported []string) (FieldSelector, error) {
	if strings.TrimSpace(s) == "" {
		return FieldSelector{}, nil
	}
	var reqs []FieldRequirement
	for _, term := range splitUnescaped(s, ',') {
		r, err := parseFieldTerm(term)
		if err != nil {
			return FieldSelector{}, fmt.Errorf("field selector %q: %w", s, err)
		}
		if _, ok := slices.BinarySearch(supported, r.Field); !ok {
			return FieldSelector{}, fmt.Errorf("field selector %q: field %q is not supported (supported: %s)", s, r.Field, strings.Join(supported, ", "))
		}
		reqs = append(reqs, r)
	}
	return FieldSelector{reqs: reqs}, nil
}

func parseFieldTerm(term string) (FieldRequirement, error) {
	for i := 0; i < len(term); i++ {
		switch term[i] {
		case '\\':
			i++
		case '!', '=':
			op, n := OpEquals, 1
			switch {
			case strings.HasPrefix(term[i:], "!="):
				op, n = OpNotEquals, 2
			case strings.HasPrefix(term[i:], "=="):
				n = 2
			case term[i] == '!':
				continue
			}
			field := strings.TrimSpace(term[:i])
			if field == "" {
				return FieldRequirement{}, fmt.Errorf("term %q has no field name", term)
			}
			value, err := unescapeFieldValue(strings.TrimSpace(term[i+n:]))
			if err != nil {
				return FieldRequirement{}, fmt.Errorf("term %q: %w", term, err)
			}
			return FieldRequirement{Field: field, Operator: op, Value: value}, nil
		}
	}
	return FieldRequirement{}, fmt.Errorf("term %q is not field=value, field==value or field!=value", term)
}

// splitUnescaped splits s at each sep not escaped by a backslash.
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func unescapeFieldValue(s string) (string, error) {
	if !strings.ContainsAny(s, `\=,`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) || !strings.ContainsRune(`\=,`, rune(s[i+1])) {
				return "", fmt.Errorf(`invalid escape in value %q: only \\, \, and \= may be escaped`, s)
			}
			i++
			c = s[i]
		case '=', ',':
			return "", fmt.Errorf("value %q must escape %q with a backslash", s, c)
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

func escapeFieldValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `=`, `\=`).Replace(s)
}

// FieldsOf returns the fields of obj that field selectors can test: metadata.name and
// metadata.namespace for every kind, and what the kind adds (a pod's spec.nodeName and
// status.phase, a node's spec.unschedulable, ...). Objects of unregistered types get
// the metadata fields only.
func FieldsOf(obj Object) map[string]string {
	k, _ := KindOf(obj)
	return fieldsOfKind(k, obj)
}

func fieldsOfKind(k *KindInfo, obj Object) map[string]string {
	m := obj.GetObjectMeta()
	fields := map[string]string{"metadata.name": m.Name, "metadata.namespace": m.Namespace}
	if k != nil && k.Fields != nil {
		for f, v := range k.Fields(obj) {
			fields[f] = v
		}
	}
	return fields
}

// allSelectableFields is the sorted union of every kind's fields.
func allSelectableFields() []string {
	set := map[string]bool{}
	for _, k := range Kinds() {
		for f := range fieldsOfKind(k, k.New()) {
			set[f] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func podFields(obj Object) map[string]string {
	p := obj.(*Pod)
	return map[string]string{
		"spec.nodeName":           p.Spec.NodeName,
		"spec.restartPolicy":      p.Spec.RestartPolicy,
		"spec.schedulerName":      p.Spec.SchedulerName,
		"spec.serviceAccountName": p.Spec.ServiceAccountName,
		"spec.hostNetwork":        strconv.FormatBool(p.Spec.HostNetwork),
		"status.phase":            p.Status.Phase,
		"status.podIP":            p.Status.PodIP,
	}
}

func nodeFields(obj Object) map[string]string {
	n := obj.(*Node)
	return map[string]string{"spec.unschedulable": strconv.FormatBool(n.Spec.Unschedulable)}
}
