package api

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// SelectorOp is the operator of one label selector requirement.
type SelectorOp string

// Label selector operators, written as in the selector syntax.
const (
	OpEquals       SelectorOp = "="
	OpNotEquals    SelectorOp = "!="
	OpIn           SelectorOp = "in"
	OpNotIn        SelectorOp = "notin"
	OpExists       SelectorOp = "exists"
	OpDoesNotExist SelectorOp = "!"
)

// Requirement is one condition of a label selector: "app=web", "tier in (a,b)", "!canary".
type Requirement struct {
	Key      string
	Operator SelectorOp
	// Values holds one value for = and !=, one or more for in and notin (sorted, without
	// duplicates), and none for exists and !.
	Values []string
}

// Matches reports whether labels satisfy the requirement. A missing label satisfies
// !=, notin and ! only.
func (r Requirement) Matches(labels map[string]string) bool {
	v, has := labels[r.Key]
	switch r.Operator {
	case OpExists:
		return has
	case OpDoesNotExist:
		return !has
	case OpEquals, OpIn:
		return has && slices.Contains(r.Values, v)
	case OpNotEquals, OpNotIn:
		return !has || !slices.Contains(r.Values, v)
	}
	return false
}

// String writes the requirement in selector syntax: "app=web", "tier in (a,b)", "!canary".
func (r Requirement) String() string {
	switch r.Operator {
	case OpExists:
		return r.Key
	case OpDoesNotExist:
		return "!" + r.Key
	case OpEquals, OpNotEquals:
		return r.Key + string(r.Operator) + strings.Join(r.Values, "")
	}
	return r.Key + " " + string(r.Operator) + " (" + strings.Join(r.Values, ",") + ")"
}

// Selector selects objects by their labels: every requirement must hold. The zero
// value selects everything. A Selector is immutable and safe for concurrent use.
type Selector struct {
	reqs    []Requirement
	nothing bool
}

// Everything returns the selector that matches every set of labels.
func Everything() Selector { return Selector{} }

// Nothing returns the selector that matches no set of labels, which is what a nil
// LabelSelector means.
func Nothing() Selector { return Selector{nothing: true} }

// Matches reports whether labels (which may be nil) satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	if s.nothing {
		return false
	}
	for _, r := range s.reqs {
		if !r.Matches(labels) {
			return false
		}
	}
	return true
}

// Empty reports whether the selector has no requirement, so that it matches everything.
func (s Selector) Empty() bool { return !s.nothing && len(s.reqs) == 0 }

// Requirements returns a copy of the selector's requirements, sorted by key.
func (s Selector) Requirements() []Requirement { return slices.Clone(s.reqs) }

// String writes the selector in the syntax ParseSelector reads, requirements sorted
// by key: "app=web,tier in (back,front)". The selector that matches nothing has no such
// spelling and is written "<nothing>".
func (s Selector) String() string {
	if s.nothing {
		return "<nothing>"
	}
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// newSelector sorts the requirements into the canonical order String writes.
func newSelector(reqs []Requirement) Selector {
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].Key < reqs[j].Key })
	return Selector{reqs: reqs}
}

// SelectorFromMap returns the selector that requires every key=value of m; an empty or
// nil map selects everything. The keys and values are not checked: m is assumed to
// come from an object that passed validation.
func SelectorFromMap(m map[string]string) Selector {
	reqs := make([]Requirement, 0, len(m))
	for k, v := range m {
		reqs = append(reqs, Requirement{Key: k, Operator: OpEquals, Values: []string{v}})
	}
	return newSelector(reqs)
}

// ParseSelector reads a label selector as kubectl and the REST API write it:
// comma-joined requirements, each one of "key=value", "key==value", "key!=value",
// "key in (v1,v2)", "key notin (v1)", "key" (the label exists) and "!key" (it does
// not). The empty string selects everything. Keys and values must be valid label keys
// and values.
func ParseSelector(s string) (Selector, error) {
	p := &selectorParser{lex: selectorLexer{s: s}}
	reqs, err := p.parse()
	if err != nil {
		return Selector{}, fmt.Errorf("label selector %q: %w", s, err)
	}
	return newSelector(reqs), nil
}

type selectorToken int

const (
	tokEOF selectorToken = iota
	tokIdent
	tokNot   // !
	tokEq    // =
	tokDEq   // ==
	tokNeq   // !=
	tokIn    // in
	tokNotIn // notin
	tokOpen  // (
	tokClose // )
	tokComma // ,
)

var tokenNames = [...]string{"end of selector", "identifier", `"!"`, `"="`, `"=="`, `"!="`, `"in"`, `"notin"`, `"("`, `")"`, `","`}

type selectorLexer struct {
	s   string
	pos int
}

// next returns the next token, its text and its position (1-based, for messages).
func (l *selectorLexer) next() (selectorToken, string, int) {
	for l.pos < len(l.s) && isSelectorSpace(l.s[l.pos]) {
		l.pos++
	}
	start := l.pos
	if l.pos >= len(l.s) {
		return tokEOF, "", start + 1
	}
	switch c := l.s[l.pos]; c {
	case '!':
		if l.pos+1 < len(l.s) && l.s[l.pos+1] == '=' {
			l.pos += 2
			return tokNeq, "!=", start + 1
		}
		l.pos++
		return tokNot, "!", start + 1
	case '=':
		if l.pos+1 < len(l.s) && l.s[l.pos+1] == '=' {
			l.pos += 2
			return tokDEq, "==", start + 1
		}
		l.pos++
		return tokEq, "=", start + 1
	case '(':
		l.pos++
		return tokOpen, "(", start + 1
	case ')':
		l.pos++
		return tokClose, ")", start + 1
	case ',':
		l.pos++
		return tokComma, ",", start + 1
	}
	for l.pos < len(l.s) && !isSelectorSpace(l.s[l.pos]) && !strings.ContainsRune("!=(),", rune(l.s[l.pos])) {
		l.pos++
	}
	word := l.s[start:l.pos]
	switch word {
	case "in":
		return tokIn, word, start + 1
	case "notin":
		return tokNotIn, word, start + 1
	}
	return tokIdent, word, start + 1
}

func isSelectorSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

type selectorParser struct {
	lex    selectorLexer
	peeked bool
	tok    selectorToken
	text   string
	pos    int
}

func (p *selectorParser) peek() (selectorToken, string, int) {
	if !p.peeked {
		p.tok, p.text, p.pos = p.lex.next()
		p.peeked = true
	}
	return p.tok, p.text, p.pos
}

func (p *selectorParser) next() (selectorToken, string, int) {
	t, text, pos := p.peek()
	p.peeked = false
	return t, text, pos
}

func unexpected(t selectorToken, text string, pos int, want string) error {
	if t == tokIdent {
		return fmt.Errorf("found %q at position %d, expected %s", text, pos, want)
	}
	return fmt.Errorf("found %s at position %d, expected %s", tokenNames[t], pos, want)
}

func (p *selectorParser) parse() ([]Requirement, error) {
	var reqs []Requirement
	if t, _, _ := p.peek(); t == tokEOF {
		return nil, nil
	}
	for {
		r, err := p.requirement()
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, r)
		switch t, text, pos := p.next(); t {
		case tokEOF:
			return reqs, nil
		case tokComma:
		default:
			return nil, unexpected(t, text, pos, `"," or the end of the selector`)
		}
	}
}

func (p *selectorParser) requirement() (Requirement, error) {
	t, text, pos := p.next()
	if t == tokNot {
		t, text, pos = p.next()
		if t != tokIdent {
			return Requirement{}, unexpected(t, text, pos, "a label key after \"!\"")
		}
		return Requirement{Key: text, Operator: OpDoesNotExist}, checkSelectorKey(text)
	}
	if t != tokIdent {
		return Requirement{}, unexpected(t, text, pos, "a label key")
	}
	key := text
	if err := checkSelectorKey(key); err != nil {
		return Requirement{}, err
	}
	switch t, text, pos := p.peek(); t {
	case tokEOF, tokComma:
		return Requirement{Key: key, Operator: OpExists}, nil
	case tokEq, tokDEq, tokNeq:
		p.next()
		op := OpEquals
		if t == tokNeq {
			op = OpNotEquals
		}
		value := ""
		if t, text, _ := p.peek(); t == tokIdent {
			p.next()
			value = text
		}
		if err := checkSelectorValue(value); err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: key, Operator: op, Values: []string{value}}, nil
	case tokIn, tokNotIn:
		p.next()
		op := OpIn
		if t == tokNotIn {
			op = OpNotIn
		}
		values, err := p.values(text)
		if err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: key, Operator: op, Values: values}, nil
	default:
		return Requirement{}, unexpected(t, text, pos, fmt.Sprintf("an operator (=, ==, !=, in, notin), \",\" or the end after %q", key))
	}
}

// values reads "(v1,v2)" after in or notin. As in Kubernetes, "()" and empty items
// stand for the empty value.
func (p *selectorParser) values(op string) ([]string, error) {
	if t, text, pos := p.next(); t != tokOpen {
		return nil, unexpected(t, text, pos, fmt.Sprintf("\"(\" after %s", op))
	}
	var values []string
	afterValue := false
	for {
		t, text, pos := p.next()
		switch t {
		case tokIdent:
			if afterValue {
				return nil, unexpected(t, text, pos, `"," or ")"`)
			}
			if err := checkSelectorValue(text); err != nil {
				return nil, err
			}
			values = append(values, text)
			afterValue = true
		case tokComma:
			if !afterValue {
				values = append(values, "")
			}
			afterValue = false
		case tokClose:
			if !afterValue {
				values = append(values, "")
			}
			slices.Sort(values)
			return slices.Compact(values), nil
		default:
			return nil, unexpected(t, text, pos, `a value, "," or ")"`)
		}
	}
}

func checkSelectorKey(k string) error {
	if msg := checkQualifiedName(k); msg != "" {
		return fmt.Errorf("invalid label key: %s", msg)
	}
	return nil
}

func checkSelectorValue(v string) error {
	if msg := checkLabelValue(v); msg != "" {
		return fmt.Errorf("invalid label value: %s", msg)
	}
	return nil
}

// LabelSelector is the selector API objects carry (a Deployment's spec.selector, a
// Service's is a plain map): every matchLabels pair and every expression must hold.
// A nil *LabelSelector selects nothing; an empty one selects everything.
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one expression of a LabelSelector.
type LabelSelectorRequirement struct {
	Key      string                `json:"key"`
	Operator LabelSelectorOperator `json:"operator"`
	Values   []string              `json:"values,omitempty"`
}

// LabelSelectorOperator is In, NotIn, Exists or DoesNotExist.
type LabelSelectorOperator string

// The operators of LabelSelectorRequirement.
const (
	LabelSelectorOpIn           LabelSelectorOperator = "In"
	LabelSelectorOpNotIn        LabelSelectorOperator = "NotIn"
	LabelSelectorOpExists       LabelSelectorOperator = "Exists"
	LabelSelectorOpDoesNotExist LabelSelectorOperator = "DoesNotExist"
)

// AsSelector converts the API form into a Selector. A nil receiver gives Nothing. The
// error is FieldErrors with paths relative to the selector ("matchExpressions[0].values").
func (ls *LabelSelector) AsSelector() (Selector, error) {
	if ls == nil {
		return Nothing(), nil
	}
	if errs := ValidateLabelSelector("", ls); len(errs) > 0 {
		return Selector{}, errs
	}
	var reqs []Requirement
	for k, v := range ls.MatchLabels {
		reqs = append(reqs, Requirement{Key: k, Operator: OpEquals, Values: []string{v}})
	}
	for _, e := range ls.MatchExpressions {
		r := Requirement{Key: e.Key}
		switch e.Operator {
		case LabelSelectorOpIn:
			r.Operator = OpIn
		case LabelSelectorOpNotIn:
			r.Operator = OpNotIn
		case LabelSelectorOpExists:
			r.Operator = OpExists
		case LabelSelectorOpDoesNotExist:
			r.Operator = OpDoesNotExist
		}
		if len(e.Values) > 0 {
			r.Values = slices.Compact(slices.Sorted(slices.Values(e.Values)))
		}
		reqs = append(reqs, r)
	}
	return newSelector(reqs), nil
}

// ValidateLabelSelector checks ls (which may be nil) and names faults under field, the
// selector's own path ("spec.selector"; "" for paths relative to it).
func ValidateLabelSelector(field string, ls *LabelSelector) FieldErrors {
	if ls == nil {
		return nil
	}
	errs := validateLabels(child(field, "matchLabels"), ls.MatchLabels)
	for i, e := range ls.MatchExpressions {
		p := index(child(field, "matchExpressions"), i)
		if e.Key == "" {
			errs.add(child(p, "key"), "required")
		} else {
			errs.check(child(p, "key"), checkQualifiedName(e.Key))
		}
		switch e.Operator {
		case LabelSelectorOpIn, LabelSelectorOpNotIn:
			if len(e.Values) == 0 {
				errs.addf(child(p, "values"), "required when operator is %s", e.Operator)
			}
		case LabelSelectorOpExists, LabelSelectorOpDoesNotExist:
			if len(e.Values) > 0 {
				errs.addf(child(p, "values"), "must be empty when operator is %s", e.Operator)
			}
		case "":
			errs.add(child(p, "operator"), "required")
		default:
			errs.add(child(p, "operator"), oneOf(string(e.Operator), "In", "NotIn", "Exists", "DoesNotExist"))
		}
		for j, v := range e.Values {
			errs.check(index(child(p, "values"), j), checkLabelValue(v))
		}
	}
	return errs
}
