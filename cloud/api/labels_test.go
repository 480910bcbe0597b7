package api

import (
	"strings"
	"testing"
)

func TestParseSelector(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front", "env": "", "example.com/team": "a"}
	tests := []struct {
		in     string
		string string // canonical form
		match  bool   // against labels
	}{
		{"", "", true},
		{"   ", "", true},
		{"app=web", "app=web", true},
		{"app==web", "app=web", true},
		{"app = web", "app=web", true},
		{"app=db", "app=db", false},
		{"app!=db", "app!=db", true},
		{"app!=web", "app!=web", false},
		{"missing!=x", "missing!=x", true},
		{"missing=x", "missing=x", false},
		{"env=", "env=", true},
		{"missing=", "missing=", false},
		{"app", "app", true},
		{"missing", "missing", false},
		{"!missing", "!missing", true},
		{"! app", "!app", false},
		{"tier in (front,back)", "tier in (back,front)", true},
		{"tier in(back)", "tier in (back)", false},
		{"tier in (front, back, front)", "tier in (back,front)", true},
		{"tier notin (back)", "tier notin (back)", true},
		{"tier notin (front)", "tier notin (front)", false},
		{"missing notin (front)", "missing notin (front)", true},
		{"missing in (front)", "missing in (front)", false},
		{"env in ()", "env in ()", true},
		{"env in (,x)", "env in (,x)", true},
		{"example.com/team=a", "example.com/team=a", true},
		{"tier=front,app=web", "app=web,tier=front", true},
		{"tier=front, app=db", "app=db,tier=front", false},
		{"app,!missing,tier in (front),env=", "app,env=,!missing,tier in (front)", true},
	}
	for _, tt := range tests {
		s, err := ParseSelector(tt.in)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tt.in, err)
			continue
		}
		if got := s.String(); got != tt.string {
			t.Errorf("ParseSelector(%q).String() = %q, want %q", tt.in, got, tt.string)
		}
		if got := s.Matches(labels); got != tt.match {
			t.Errorf("ParseSelector(%q).Matches = %v, want %v", tt.in, got, tt.match)
		}
		if got := s.Empty(); got != (tt.string == "") {
			t.Errorf("ParseSelector(%q).Empty() = %v", tt.in, got)
		}
		// The canonical form parses back to itself.
		again, err := ParseSelector(s.String())
		if err != nil || again.String() != s.String() {
			t.Errorf("ParseSelector(%q) does not round-trip: %q, %v", s.String(), again.String(), err)
		}
	}
	if s, _ := ParseSelector("app=web"); !s.Matches(map[string]string{"app": "web"}) || s.Matches(nil) {
		t.Errorf("matching nil labels")
	}
}

func TestParseSelectorErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{",", `label selector ",": found "," at position 1, expected a label key`},
		{"a=b,", `label selector "a=b,": found end of selector at position 5, expected a label key`},
		{"a=b=c", `label selector "a=b=c": found "=" at position 4, expected "," or the end of the selector`},
		{"a b", `label selector "a b": found "b" at position 3, expected an operator (=, ==, !=, in, notin), "," or the end after "a"`},
		{"a in x", `label selector "a in x": found "x" at position 6, expected "(" after in`},
		{"a in (x", `label selector "a in (x": found end of selector at position 8, expected a value, "," or ")"`},
		{"a in (x y)", `label selector "a in (x y)": found "y" at position 9, expected "," or ")"`},
		{"a notin (x))", `label selector "a notin (x))": found ")" at position 12, expected "," or the end of the selector`},
		{"!", `label selector "!": found end of selector at position 2, expected a label key after "!"`},
		{"!a=b", `label selector "!a=b": found "=" at position 3, expected "," or the end of the selector`},
		{"=b", `label selector "=b": found "=" at position 1, expected a label key`},
		{"in=b", `label selector "in=b": found "in" at position 1, expected a label key`},
		{"-a=b", `label selector "-a=b": invalid label key: "-a" ` + keyRule},
		{"a=b c", `label selector "a=b c": found "c" at position 5, expected "," or the end of the selector`},
		{"a=-b", `label selector "a=-b": invalid label value: "-b" ` + valueRule},
		{"a in (x,-y)", `label selector "a in (x,-y)": invalid label value: "-y" ` + valueRule},
		{"a=" + strings.Repeat("v", 64), `label selector "a=` + strings.Repeat("v", 64) + `": invalid label value: "` + strings.Repeat("v", 64) + `" ` + valueRule},
	}
	for _, tt := range tests {
		_, err := ParseSelector(tt.in)
		if err == nil {
			t.Errorf("ParseSelector(%q): no error", tt.in)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseSelector(%q):\n got %s\nwant %s", tt.in, err, tt.want)
		}
	}
}

func TestSelectorFromMap(t *testing.T) {
	s := SelectorFromMap(map[string]string{"tier": "front", "app": "web"})
	if s.String() != "app=web,tier=front" {
		t.Errorf("String() = %q", s.String())
	}
	if !s.Matches(map[string]string{"app": "web", "tier": "front", "x": "y"}) || s.Matches(map[string]string{"app": "web"}) {
		t.Errorf("Matches is wrong")
	}
	if e := SelectorFromMap(nil); !e.Empty() || !e.Matches(nil) {
		t.Errorf("an empty map must select everything")
	}
	var zero Selector
	if !zero.Empty() || !zero.Matches(map[string]string{"a": "b"}) || zero.String() != "" {
		t.Errorf("the zero Selector must select everything")
	}
}

func TestLabelSelectorAsSelector(t *testing.T) {
	tests := []struct {
		name   string
		ls     *LabelSelector
		string string
		match  bool // against app=web,tier=front
	}{
		{"nil selects nothing", nil, "<nothing>", false},
		{"empty selects everything", &LabelSelector{}, "", true},
		{"matchLabels", &LabelSelector{MatchLabels: map[string]string{"app": "web"}}, "app=web", true},
		{"expressions", &LabelSelector{
			MatchLabels: map[string]string{"app": "web"},
			MatchExpressions: []LabelSelectorRequirement{
				{Key: "tier", Operator: LabelSelectorOpIn, Values: []string{"front", "back"}},
				{Key: "canary", Operator: LabelSelectorOpDoesNotExist},
				{Key: "app", Operator: LabelSelectorOpExists},
				{Key: "env", Operator: LabelSelectorOpNotIn, Values: []string{"prod"}},
			}}, "app=web,app,!canary,env notin (prod),tier in (back,front)", true},
		{"failing expression", &LabelSelector{MatchExpressions: []LabelSelectorRequirement{
			{Key: "tier", Operator: LabelSelectorOpNotIn, Values: []string{"front"}}}}, "tier notin (front)", false},
	}
	labels := map[string]string{"app": "web", "tier": "front"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.ls.AsSelector()
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != tt.string {
				t.Errorf("String() = %q, want %q", s.String(), tt.string)
			}
			if s.Matches(labels) != tt.match {
				t.Errorf("Matches = %v, want %v", !tt.match, tt.match)
			}
		})
	}
}

func TestLabelSelectorErrors(t *testing.T) {
	ls := &LabelSelector{
		MatchLabels: map[string]string{"app": "-web"},
		MatchExpressions: []LabelSelectorRequirement{
			{Key: "tier", Operator: LabelSelectorOpIn},
			{Key: "canary", Operator: LabelSelectorOpExists, Values: []string{"x"}},
			{Operator: "Gt", Values: []string{"1"}},
			{Key: "a", Operator: LabelSelectorOpIn, Values: []string{"ok", "not ok"}},
		},
	}
	_, err := ls.AsSelector()
	checkFieldErrors(t, err, []string{
		`matchLabels[app]: "-web" ` + valueRule,
		"matchExpressions[0].values: required when operator is In",
		"matchExpressions[1].values: must be empty when operator is Exists",
		"matchExpressions[2].key: required",
		`matchExpressions[2].operator: "Gt" must be one of In, NotIn, Exists, DoesNotExist`,
		`matchExpressions[3].values[1]: "not ok" ` + valueRule,
	})
	checkFieldErrors(t, ValidateLabelSelector("spec.selector", &LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "a"}}}),
		[]string{"spec.selector.matchExpressions[0].operator: required"})
	checkFieldErrors(t, ValidateLabelSelector("spec.selector", nil), nil)
}
