package client

import "strings"

// parseWarnings returns the texts of HTTP Warning headers as the API server sends
// them (`299 - "text"`, quotes and backslashes escaped, several in one header
// separated by commas, as RFC 7234 allows). A value that is not of that shape is
// skipped.
func parseWarnings(values []string) []string {
	var texts []string
	for _, v := range values {
		for rest := strings.TrimSpace(v); rest != ""; {
			text, after, ok := parseWarning(rest)
			if !ok {
				break
			}
			texts = append(texts, text)
			rest = strings.TrimPrefix(strings.TrimSpace(after), ",")
			rest = strings.TrimSpace(rest)
		}
	}
	return texts
}

// parseWarning reads one `CODE AGENT "TEXT" ["DATE"]` from the start of s.
func parseWarning(s string) (text, rest string, ok bool) {
	code, s, ok := strings.Cut(s, " ")
	if !ok || len(code) != 3 {
		return "", "", false
	}
	_, s, ok = strings.Cut(s, " ") // the agent
	if !ok || !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			rest = strings.TrimSpace(s[i+1:])
			if strings.HasPrefix(rest, `"`) { // a warn-date
				if end := strings.IndexByte(rest[1:], '"'); end >= 0 {
					rest = rest[end+2:]
				}
			}
			return b.String(), rest, true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}
