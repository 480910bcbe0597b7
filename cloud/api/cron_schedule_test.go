package api

import (
	"strings"
	"testing"
	"time"
)

func TestCronScheduleNext(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		spec, from string
		want       []string
	}{
		{"* * * * *", "2030-01-01 00:00", []string{"2030-01-01 00:01", "2030-01-01 00:02"}},
		{"*/15 * * * *", "2030-01-01 00:07", []string{"2030-01-01 00:15", "2030-01-01 00:30", "2030-01-01 00:45", "2030-01-01 01:00"}},
		{"5,10-12 * * * *", "2030-01-01 00:00", []string{"2030-01-01 00:05", "2030-01-01 00:10", "2030-01-01 00:11", "2030-01-01 00:12", "2030-01-01 01:05"}},
		{"1-5/2 * * * *", "2030-01-01 00:00", []string{"2030-01-01 00:01", "2030-01-01 00:03", "2030-01-01 00:05", "2030-01-01 01:01"}},
		{"50/5 * * * *", "2030-01-01 00:00", []string{"2030-01-01 00:50", "2030-01-01 00:55", "2030-01-01 01:50"}},
		{"0 9 * * MON-FRI", "2030-01-04 10:00", []string{"2030-01-07 09:00", "2030-01-08 09:00"}}, // Friday → Monday
		{"0 0 * * sun", "2030-01-01 00:00", []string{"2030-01-06 00:00"}},
		{"0 0 * * 7", "2030-01-01 00:00", []string{"2030-01-06 00:00"}},
		{"0 0 1 JAN,jul *", "2030-02-01 00:00", []string{"2030-07-01 00:00", "2031-01-01 00:00"}},
		// Month ends: the 31st skips short months.
		{"0 12 31 * *", "2030-01-31 12:00", []string{"2030-03-31 12:00", "2030-05-31 12:00"}},
		// Leap years: 29 February comes every four years.
		{"0 0 29 2 *", "2030-01-01 00:00", []string{"2032-02-29 00:00", "2036-02-29 00:00"}},
		// Both day fields restricted: either matches (the 13th, or a Friday).
		{"0 0 13 * 5", "2030-09-01 00:00", []string{"2030-09-06 00:00", "2030-09-13 00:00", "2030-09-20 00:00"}},
		// Day of month restricted, day of week '*': both must match, so only the 13th.
		{"0 0 13 * *", "2030-09-01 00:00", []string{"2030-09-13 00:00", "2030-10-13 00:00"}},
		{"0 0 13 * ?", "2030-09-01 00:00", []string{"2030-09-13 00:00"}},
		{"59 23 31 12 *", "2030-12-31 23:59", []string{"2031-12-31 23:59"}},
		{"@hourly", "2030-01-01 00:30", []string{"2030-01-01 01:00", "2030-01-01 02:00"}},
		{"@daily", "2030-01-01 00:30", []string{"2030-01-02 00:00"}},
		{"@midnight", "2030-01-01 00:30", []string{"2030-01-02 00:00"}},
		{"@weekly", "2030-01-01 00:30", []string{"2030-01-06 00:00"}},
		{"@monthly", "2030-01-31 00:30", []string{"2030-02-01 00:00", "2030-03-01 00:00"}},
		{"@yearly", "2030-06-01 00:00", []string{"2031-01-01 00:00"}},
		{"@annually", "2030-06-01 00:00", []string{"2031-01-01 00:00"}},
		{"  0   0  * * *  ", "2030-01-01 00:30", []string{"2030-01-02 00:00"}},
	}
	for _, tt := range tests {
		s, err := ParseCronSchedule(tt.spec)
		if err != nil {
			t.Errorf("%q: %v", tt.spec, err)
			continue
		}
		at := utc(tt.from)
		for _, w := range tt.want {
			at = s.Next(at)
			if !at.Equal(utc(w)) {
				t.Errorf("%q from %s: got %s, want %s", tt.spec, tt.from, at.Format("2006-01-02 15:04 Mon"), w)
				break
			}
		}
	}
	never, _ := ParseCronSchedule("0 0 30 2 *")
	if got := never.Next(utc("2030-01-01 00:00")); !got.IsZero() {
		t.Errorf("30 February: got %v, want zero time", got)
	}
	// Next keeps the location it is given.
	paris, err := time.LoadLocation("Europe/Paris")
	if err == nil {
		s, _ := ParseCronSchedule("0 9 * * *")
		got := s.Next(time.Date(2030, 1, 1, 10, 0, 0, 0, paris))
		if want := time.Date(2030, 1, 2, 9, 0, 0, 0, paris); !got.Equal(want) {
			t.Errorf("Paris: got %v, want %v", got, want)
		}
	}
}

func TestCronScheduleErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"", `has 0 fields, want 5`},
		{"* * * *", `has 4 fields, want 5`},
		{"* * * * * *", `has 6 fields, want 5`},
		{"@every 5m", `is not a known macro`},
		{"60 * * * *", `minute field "60": 60 is out of range 0-59`},
		{"* 24 * * *", `hour field "24": 24 is out of range 0-23`},
		{"* * 0 * *", `day of month field "0": 0 is out of range 1-31`},
		{"* * * 13 *", `month field "13": 13 is out of range 1-12`},
		{"* * * * 8", `day of week field "8": 8 is out of range 0-7`},
		{"* * * FOO *", `month field "FOO": "FOO" is neither a number from 1 to 12 nor a name such as JAN`},
		{"* * * * funday", `"funday" is neither a number from 0 to 7 nor a name such as MON`},
		{"a * * * *", `minute field "a": "a" is not a number from 0 to 59`},
		{"*/0 * * * *", `step "0" must be a positive number`},
		{"*/x * * * *", `step "x" must be a positive number`},
		{"5-1 * * * *", `range 5-1 runs backwards`},
		{"1,,2 * * * *", `empty list item`},
	}
	for _, tt := range tests {
		_, err := ParseCronSchedule(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseCronSchedule(%q) = %v, want an error containing %q", tt.spec, err, tt.want)
		}
	}
}
