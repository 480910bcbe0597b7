package api

import (
	"errors"
	"strings"
)

// ErrInvalid marks an object that failed validation; FieldErrors wrap it.
var ErrInvalid = errors.New("invalid")

// FieldError says which field of an object is wrong and why:
// "spec.containers[0].image: required".
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalid) true for a FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// FieldErrors is every problem validation found in one object.
type FieldErrors []*FieldError

func (l FieldErrors) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true for FieldErrors.
func (l FieldErrors) Is(target error) bool { return target == ErrInvalid }

// OrNil returns nil for an empty list, so `return errs.OrNil()` reads right.
func (l FieldErrors) OrNil() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Status is the body of every error answer of the API, shaped like Kubernetes's
// metav1.Status so that its clients understand it.
type Status struct {
	TypeMeta `json:",inline"`
	Status   string         `json:"status,omitempty"` // "Failure" or "Success"
	Message  string         `json:"message,omitempty"`
	Reason   string         `json:"reason,omitempty"` // NotFound, AlreadyExists, Conflict, Invalid, ...
	Details  *StatusDetails `json:"details,omitempty"`
	Code     int            `json:"code,omitempty"`
}

// StatusDetails names the object an error is about and the fields at fault.
type StatusDetails struct {
	Name   string        `json:"name,omitempty"`
	Kind   string        `json:"kind,omitempty"`
	Causes []StatusCause `json:"causes,omitempty"`
}

// StatusCause is one field-level cause of an error.
type StatusCause struct {
	Type    string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Field   string `json:"field,omitempty"`
}

// Error makes a Status usable as an error on the client side.
func (s *Status) Error() string { return s.Message }
