package api

// ObjectReference points at one object of any kind.
type ObjectReference struct {
	APIVersion      string `json:"apiVersion,omitempty"`
	Kind            string `json:"kind,omitempty"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	UID             string `json:"uid,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// Event reports something that happened to an object (a pod scheduled, a Job
// finished), for people reading `get events` and `describe`. Repeats of one event
// are counted in a single object rather than stored again.
type Event struct {
	TypeMeta       `json:",inline"`
	ObjectMeta     `json:"metadata"`
	InvolvedObject ObjectReference `json:"involvedObject"`
	// Reason is a short CamelCase word: SuccessfulCreate, BackoffLimitExceeded.
	Reason  string      `json:"reason,omitempty"`
	Message string      `json:"message,omitempty"`
	Source  EventSource `json:"source,omitempty"`
	// FirstTimestamp and LastTimestamp bound the Count occurrences.
	FirstTimestamp *Time  `json:"firstTimestamp,omitempty"`
	LastTimestamp  *Time  `json:"lastTimestamp,omitempty"`
	Count          int32  `json:"count,omitempty"`
	Type           string `json:"type,omitempty"`
}

// EventSource names the component, and the host, that reported an event.
type EventSource struct {
	Component string `json:"component,omitempty"`
	Host      string `json:"host,omitempty"`
}

// Event types.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

func init() {
	Register(&KindInfo{Kind: "Event", Version: "v1", Resource: "events", Singular: "event", ShortNames: []string{"ev"}, Namespaced: true,
		New: func() Object { return &Event{} },
		// Event names are "<object>.<unique>", and object names may hold dots.
		SubdomainNames: true,
		Default: func(o Object) {
			e := o.(*Event)
			if e.Type == "" {
				e.Type = EventNormal
			}
			if e.Count == 0 {
				e.Count = 1
			}
		},
		Validate: validateEvent,
		Fields:   eventFields,
	})
}

func validateEvent(o Object) FieldErrors {
	e := o.(*Event)
	var errs FieldErrors
	if e.InvolvedObject.Kind == "" {
		errs.add("involvedObject.kind", "required")
	}
	if e.InvolvedObject.Name == "" {
		errs.add("involvedObject.name", "required")
	}
	if e.Reason == "" {
		errs.add("reason", "required")
	}
	switch e.Type {
	case EventNormal, EventWarning:
	default:
		errs.add("type", oneOf(e.Type, EventNormal, EventWarning))
	}
	if e.Count < 0 {
		errs.addf("count", "%d must be greater than or equal to 0", e.Count)
	}
	return errs
}

func eventFields(o Object) map[string]string {
	e := o.(*Event)
	return map[string]string{
		"involvedObject.kind":      e.InvolvedObject.Kind,
		"involvedObject.name":      e.InvolvedObject.Name,
		"involvedObject.namespace": e.InvolvedObject.Namespace,
		"involvedObject.uid":       e.InvolvedObject.UID,
		"reason":                   e.Reason,
		"type":                     e.Type,
	}
}
