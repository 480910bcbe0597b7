package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

// apiError is an error already shaped as the Status the client should get.
type apiError struct{ status *api.Status }

func (e *apiError) Error() string { return e.status.Message }

func newStatus(code int, reason, msg string) *apiError {
	return &apiError{&api.Status{
		TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   "Failure", Message: msg, Reason: reason, Code: code,
	}}
}

func badRequest(msg string) error { return newStatus(http.StatusBadRequest, "BadRequest", msg) }

func notFound(msg string) error { return newStatus(http.StatusNotFound, "NotFound", msg) }

func methodNotAllowed(msg string) error {
	return newStatus(http.StatusMethodNotAllowed, "MethodNotAllowed", msg)
}

// toStatus turns any error into the Status the API answers with. This is the one
// place where sentinel errors become HTTP codes.
func toStatus(err error, kind *api.KindInfo, name string) *api.Status {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status
	}
	code, reason := http.StatusInternalServerError, "InternalError"
	var causes []api.StatusCause
	switch {
	case errors.Is(err, store.ErrNotFound):
		code, reason = http.StatusNotFound, "NotFound"
	case errors.Is(err, store.ErrAlreadyExists):
		code, reason = http.StatusConflict, "AlreadyExists"
	case errors.Is(err, store.ErrConflict):
		code, reason = http.StatusConflict, "Conflict"
	case errors.Is(err, store.ErrGone):
		code, reason = http.StatusGone, "Expired"
	case errors.Is(err, api.ErrInvalid):
		code, reason = http.StatusUnprocessableEntity, "Invalid"
		causes = fieldCauses(err)
	}
	s := newStatus(code, reason, err.Error()).status
	if kind != nil || name != "" || causes != nil {
		s.Details = &api.StatusDetails{Name: name, Causes: causes}
		if kind != nil {
			s.Details.Kind = kind.Resource
		}
	}
	return s
}

func fieldCauses(err error) []api.StatusCause {
	var list api.FieldErrors
	var one *api.FieldError
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = api.FieldErrors{one}
	default:
		return nil
	}
	causes := make([]api.StatusCause, len(list))
	for i, fe := range list {
		causes[i] = api.StatusCause{Type: "FieldValueInvalid", Message: fe.Reason, Field: fe.Field}
	}
	return causes
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error, kind *api.KindInfo, name string) {
	s := toStatus(err, kind, name)
	writeJSON(w, s.Code, s)
}
