package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CronSchedule is a parsed five-field cron schedule. Its zero value matches nothing;
// make one with ParseCronSchedule. It is immutable and safe for concurrent use.
//
// It lives here rather than beside the CronJob controller because validation, which
// the API server runs, must reject a bad schedule with the parser's message.
type CronSchedule struct {
	minute, hour, dom, month, dow uint64
	// domStar and dowStar are set when the field was "*" or "?": then a day matches
	// when both day fields do; when both are restricted, when either does (cron's rule).
	domStar, dowStar bool
}

type cronField struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	cronMonthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	cronDayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

	cronFields = [5]cronField{
		{"minute", 0, 59, nil},
		{"hour", 0, 23, nil},
		{"day of month", 1, 31, nil},
		{"month", 1, 12, cronMonthNames},
		// 7 is Sunday too, as in most crons.
		{"day of week", 0, 7, cronDayNames},
	}

	cronMacros = map[string]string{
		"@yearly":   "0 0 1 1 *",
		"@annually": "0 0 1 1 *",
		"@monthly":  "0 0 1 * *",
		"@weekly":   "0 0 * * 0",
		"@daily":    "0 0 * * *",
		"@midnight": "0 0 * * *",
		"@hourly":   "0 * * * *",
	}
)

// ParseCronSchedule reads a schedule of five fields, minute hour day-of-month month
// day-of-week, each "*", a value, a range "1-5", a step "*/15" or "1-30/2", or a
// comma-separated list of those; months and days may be named (JAN-DEC, SUN-SAT).
// The macros @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly
// stand for their usual schedules. The error says which field is wrong and why.
func ParseCronSchedule(spec string) (*CronSchedule, error) {
	s := strings.TrimSpace(spec)
	if strings.HasPrefix(s, "@") {
		m, ok := cronMacros[strings.ToLower(s)]
		if !ok {
			return nil, fmt.Errorf("%q is not a known macro (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)", spec)
		}
		s = m
	}
	f := strings.Fields(s)
	if len(f) != 5 {
		return nil, fmt.Errorf("%q has %d fields, want 5: minute hour day-of-month month day-of-week (e.g. \"*/15 * * * *\") or a macro such as @hourly", spec, len(f))
	}
	var sched CronSchedule
	out := [5]*uint64{&sched.minute, &sched.hour, &sched.dom, &sched.month, &sched.dow}
	for i, text := range f {
		bits, err := parseCronField(text, cronFields[i])
		if err != nil {
			return nil, fmt.Errorf("%q: %s field %q: %s", spec, cronFields[i].name, text, err)
		}
		*out[i] = bits
	}
	if sched.dow&(1<<7) != 0 {
		sched.dow = sched.dow&^(1<<7) | 1
	}
	sched.domStar = f[2] == "*" || f[2] == "?"
	sched.dowStar = f[4] == "*" || f[4] == "?"
	return &sched, nil
}

func parseCronField(text string, f cronField) (uint64, error) {
	var set uint64
	for _, item := range strings.Split(text, ",") {
		if item == "" {
			return 0, fmt.Errorf("empty list item")
		}
		rangePart, stepPart, hasStep := strings.Cut(item, "/")
		lo, hi := f.min, f.max
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepPart)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("step %q must be a positive number", stepPart)
			}
			step = n
		}
		switch {
		case rangePart == "*" || rangePart == "?":
		default:
			a, b, isRange := strings.Cut(rangePart, "-")
			var err error
			if lo, err = cronValue(a, f); err != nil {
				return 0, err
			}
			switch {
			case isRange:
				if hi, err = cronValue(b, f); err != nil {
					return 0, err
				}
				if hi < lo {
					return 0, fmt.Errorf("range %s-%s runs backwards", a, b)
				}
			case !hasStep:
				hi = lo
				// "5/10" means from 5 to the end in steps of 10, as other crons read it.
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func cronValue(s string, f cronField) (int, error) {
	if v, ok := f.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		if f.names != nil {
			return 0, fmt.Errorf("%q is neither a number from %d to %d nor a name such as %s", s, f.min, f.max, exampleName(f))
		}
		return 0, fmt.Errorf("%q is not a number from %d to %d", s, f.min, f.max)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", v, f.min, f.max)
	}
	return v, nil
}

func exampleName(f cronField) string {
	if f.max == 12 {
		return "JAN"
	}
	return "MON"
}

// Next returns the first time matching the schedule strictly after t, read in t's
// location, or the zero time when none comes within five years (for example
// "0 0 30 2 *").
func (s *CronSchedule) Next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if s.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			continue
		}
		if s.hour&(1<<uint(t.Hour())) == 0 {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
			continue
		}
		if s.minute&(1<<uint(t.Minute())) == 0 {
			// Adding a duration rather than rebuilding the date keeps DST gaps moving.
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

func (s *CronSchedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}
