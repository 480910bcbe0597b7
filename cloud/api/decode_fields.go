package api

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FieldValidation says what decoding does with the fields of a document that no
// cloudbox type has, with keys matched only regardless of case, and with duplicate
// keys: Kubernetes's fieldValidation directive. The zero value is FieldValidationWarn.
type FieldValidation string

// The directives, spelled as Kubernetes's fieldValidation query parameter spells them.
const (
	// FieldValidationWarn decodes the document and warns about each such field.
	FieldValidationWarn FieldValidation = "Warn"
	// FieldValidationStrict refuses the document, naming each such field.
	FieldValidationStrict FieldValidation = "Strict"
	// FieldValidationIgnore drops such fields without a word.
	FieldValidationIgnore FieldValidation = "Ignore"
)

// ParseFieldValidation reads a directive regardless of case; "" is Warn.
func ParseFieldValidation(s string) (FieldValidation, error) {
	for _, v := range []FieldValidation{FieldValidationWarn, FieldValidationStrict, FieldValidationIgnore} {
		if strings.EqualFold(s, string(v)) {
			return v, nil
		}
	}
	if s == "" {
		return FieldValidationWarn, nil
	}
	return "", &FieldError{Field: "fieldValidation", Reason: fmt.Sprintf("%q is not one of Strict, Warn, Ignore", s)}
}

// fieldIssue is a key of a document that does not name a field exactly.
type fieldIssue struct {
	path string
	// known is the field meant: for an unknown key the nearest in spelling, or ""
	// when none is close; for a case-folded key the field it was read as.
	known  string
	folded bool
}

// unknownReason is what Strict says of the key, and Warn of an unknown one.
func (fi fieldIssue) unknownReason() string {
	if fi.known == "" {
		return "unknown field"
	}
	return "unknown field (did you mean " + strconv.Quote(fi.known) + "?)"
}

// warning is what Warn says of the key.
func (fi fieldIssue) warning() string {
	if fi.folded {
		return fi.path + ": read as " + strconv.Quote(fi.known) + " (cloudbox matches field names regardless of case, Kubernetes does not)"
	}
	return fi.path + ": " + fi.unknownReason()
}

// strictErrors are the issues as the errors Strict refuses a document with, at most
// maxSchemaErrors of them.
func strictErrors(issues []fieldIssue) FieldErrors {
	var errs FieldErrors
	for _, fi := range issues[:min(len(issues), maxSchemaErrors)] {
		errs.add(fi.path, fi.unknownReason())
	}
	return errs
}

// nearest returns the field whose name is closest to key in spelling, for a "did you
// mean"; "" when none is close enough to be a likely typo of it.
func (ft *fieldTable) nearest(key string) string {
	k := strings.ToLower(key)
	best, bestDist := "", maxTypoDistance(k)+1
	for _, f := range ft.all {
		if d := editDistance(k, strings.ToLower(f.name)); d < bestDist {
			best, bestDist = f.name, d
		}
	}
	return best
}

// maxTypoDistance is how many edits still make a typo of a name as long as s: one
// for short names, two from six letters on, so that "foo" suggests nothing.
func maxTypoDistance(s string) int {
	return min(max(utf8.RuneCountInString(s)/3, 1), 2)
}

// editDistance counts the insertions, deletions, substitutions and swaps of two
// neighbouring letters that turn a into b (optimal string alignment), the usual
// shape of a typo: "contianers" is one edit from "containers".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows are enough: a swap looks two rows back.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
