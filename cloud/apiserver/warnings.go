package apiserver

import (
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// requestDecoder is the decoder a request's body is read with: the fieldValidation
// query parameter (Strict, Warn or Ignore, as kubectl sends it) and the group version
// of the request's path, which a body without an apiVersion is read as.
func requestDecoder(r *http.Request) (api.Decoder, error) {
	fv, err := api.ParseFieldValidation(r.URL.Query().Get("fieldValidation"))
	if err != nil {
		return api.Decoder{}, badRequest(err.Error())
	}
	return api.Decoder{FieldValidation: fv, APIVersion: pathAPIVersion(r.URL.Path)}, nil
}

// pathAPIVersion is the group version a REST path names: "v1" for /api/v1/...,
// "apps/v1beta2" for /apis/apps/v1beta2/..., "" for anything else.
func pathAPIVersion(path string) string {
	parts := strings.SplitN(strings.Trim(path, "/"), "/", 4)
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		return parts[1]
	case len(parts) >= 3 && parts[0] == "apis":
		return parts[1] + "/" + parts[2]
	}
	return ""
}

// maxWarningBytes bounds one warning's text, as Kubernetes bounds its warnings: a
// warning names a field a user wrote, which may be long.
const maxWarningBytes = 2 << 10

// addWarnings sends each warning as an HTTP Warning header in the form Kubernetes
// uses and client-go parses (kubectl prints them): `299 - "text"`, with " and \
// escaped. A warning already sent is not sent again (an update that is retried
// decodes its body again). It must be called before the response's header is written.
func addWarnings(w http.ResponseWriter, warnings []string) {
	h := w.Header()
	for _, text := range warnings {
		v := warningHeader(text)
		if !slices.Contains(h.Values("Warning"), v) {
			h.Add("Warning", v)
		}
	}
}

// warningHeader formats one warning. Control characters (which a key may hold, and
// which client-go refuses) become spaces.
func warningHeader(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	if len(text) > maxWarningBytes {
		text = strings.ToValidUTF8(text[:maxWarningBytes], "") + "..."
	}
	var b strings.Builder
	b.WriteString(`299 - "`)
	for _, c := range text {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case unicode.IsControl(c):
			b.WriteByte(' ')
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// dropPatchDirectives removes the directives of a strategic merge patch ($patch,
// $setElementOrder/..., $retainKeys, ...), which kubectl apply sends and which a merge
// patch has no use for: left in, they would be reported as unknown fields, and
// fieldValidation=Strict would refuse the patch.
func dropPatchDirectives(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if strings.HasPrefix(k, "$") {
				delete(v, k)
				continue
			}
			v[k] = dropPatchDirectives(e)
		}
	case []any:
		for i, e := range v {
			v[i] = dropPatchDirectives(e)
		}
	}
	return v
}
