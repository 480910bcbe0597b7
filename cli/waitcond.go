package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// waitCondition is what `cloudbox wait --for` asks of each object, in kubectl's
// words: condition=TYPE[=STATUS], jsonpath={.a.b}[=VALUE], or delete.
type waitCondition struct {
	// delete: the objects must be gone.
	delete bool
	// condType and condStatus: status.conditions has TYPE with STATUS ("True" if
	// not given; compared case-insensitively, as kubectl does).
	condType, condStatus string
	// path and value: the field at path is value, or with no value, is set and not
	// empty.
	path     []string
	value    string
	hasValue bool
	text     string // as written, for messages
}

// parseWaitFor reads --for.
func parseWaitFor(s string) (*waitCondition, error) {
	w := &waitCondition{text: s}
	switch {
	case s == "delete":
		w.delete = true
	case strings.HasPrefix(s, "condition="):
		rest := strings.TrimPrefix(s, "condition=")
		w.condType, w.condStatus, _ = strings.Cut(rest, "=")
		if w.condType == "" {
			return nil, fmt.Errorf("--for %q: name a condition, e.g. condition=Ready", s)
		}
		if w.condStatus == "" {
			w.condStatus = "True"
		}
	case strings.HasPrefix(s, "jsonpath="):
		rest := strings.TrimPrefix(s, "jsonpath=")
		expr, value, hasValue := strings.Cut(rest, "=")
		expr = strings.Trim(expr, "'\"")
		if !strings.HasPrefix(expr, "{.") || !strings.HasSuffix(expr, "}") || strings.ContainsAny(expr, "[]*") {
			return nil, fmt.Errorf("--for %q: the jsonpath must be a field path such as {.status.phase} (no lists or filters)", s)
		}
		w.path = strings.Split(strings.TrimSuffix(strings.TrimPrefix(expr, "{."), "}"), ".")
		w.value, w.hasValue = strings.Trim(value, "'\""), hasValue
	default:
		return nil, fmt.Errorf("--for %q: use condition=TYPE[=STATUS], jsonpath={.FIELD}[=VALUE] or delete", s)
	}
	return w, nil
}

// met reports whether o (nil: the object does not exist) meets the condition.
func (w *waitCondition) met(o api.Object) bool {
	if w.delete || o == nil {
		return w.delete == (o == nil)
	}
	b, err := json.Marshal(o)
	if err != nil {
		return false
	}
	var doc map[string]any
	if json.Unmarshal(b, &doc) != nil {
		return false
	}
	if w.condType != "" {
		status, _ := doc["status"].(map[string]any)
		conds, _ := status["conditions"].([]any)
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			if t, _ := cm["type"].(string); strings.EqualFold(t, w.condType) {
				s, _ := cm["status"].(string)
				return strings.EqualFold(s, w.condStatus)
			}
		}
		return false
	}
	var v any = doc
	for _, f := range w.path {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[f]; !ok {
			return false
		}
	}
	got := fmt.Sprint(v)
	if w.hasValue {
		return got == w.value
	}
	return v != nil && got != ""
}
