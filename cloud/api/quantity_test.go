package api

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in    string
		milli int64
	}{
		{"100m", 100},
		{"1", 1000},
		{"1.5", 1500},
		{"64Mi", 64 << 20 * 1000},
		{"1k", 1e6},
		{"1e3", 1e6},
		{"1E3", 1e6},
		{"0.001E", 1e18},     // exa, not an exponent
		{"0.001Ei", 1 << 60}, // exbi, not an exponent
	}
	for _, tt := range tests {
		q, err := ParseQuantity(tt.in)
		if err != nil {
			t.Errorf("ParseQuantity(%q): %v", tt.in, err)
			continue
		}
		if q.MilliValue() != tt.milli {
			t.Errorf("ParseQuantity(%q) = %d milli, want %d", tt.in, q.MilliValue(), tt.milli)
		}
	}

	errs := []struct{ in, want string }{
		{"1Ei", `quantity "1Ei" is too large`},
		{"1e19", `quantity "1e19": bad exponent "e19"`},
		{"-1", `quantity "-1" must not be negative`},
		{strings.Repeat("9", 65), `quantity "99999999999999999999"... is longer than 64 characters`},
	}
	for _, tt := range errs {
		if _, err := ParseQuantity(tt.in); err == nil || err.Error() != tt.want {
			t.Errorf("ParseQuantity(%q) error:\n got %v\nwant %s", tt.in, err, tt.want)
		}
	}
}

func TestTimeYears(t *testing.T) {
	var tm Time
	for _, in := range []string{`"0000-01-01T00:30:00+01:00"`, `"9999-12-31T23:30:00-01:00"`} {
		if err := json.Unmarshal([]byte(in), &tm); err == nil {
			t.Errorf("%s: no error; it has no RFC 3339 form in UTC", in)
		}
	}
	if err := json.Unmarshal([]byte(`"2024-05-01T12:00:00+02:00"`), &tm); err != nil || tm.UTC().Hour() != 10 {
		t.Errorf("offset time: %v, %v", tm, err)
	}
	if err := json.Unmarshal([]byte(`"tomorrow"`), &tm); err == nil || err.Error() != `time "tomorrow" is not an RFC 3339 time such as "2006-01-02T15:04:05Z"` {
		t.Errorf("bad time: %v", err)
	}
}
