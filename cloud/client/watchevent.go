package client

import (
	"encoding/json"
	"fmt"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// maxWatchEvent is the longest line a watch stream may send: one object with its
// envelope.
const maxWatchEvent = 16 << 20

// watchLine is one line of a watch stream. Object is set to a new object of the
// watched kind before decoding, so the line is decoded once, straight into it.
type watchLine struct {
	Type   string     `json:"type"`
	Object api.Object `json:"object"`
}

// decodeWatchEvent turns one line of a watch stream of kind k into an Event. An ERROR
// line carries a Status rather than an object of k, so it is read again as one.
func decodeWatchEvent(k *api.KindInfo, b []byte) Event {
	line := watchLine{Object: k.NewObject()}
	err := json.Unmarshal(b, &line)
	switch {
	case line.Type == "ERROR":
		var st struct {
			Object json.RawMessage `json:"object"`
		}
		_ = json.Unmarshal(b, &st)
		return Event{Err: statusError(0, st.Object)}
	case err != nil:
		return Event{Err: fmt.Errorf("watch %s: bad event: %w", k.Resource, err)}
	case line.Object == nil:
		// "object": null empties the interface rather than decoding into it.
		return Event{Err: fmt.Errorf("watch %s: bad event: %s event without an object", k.Resource, line.Type)}
	}
	return Event{Type: line.Type, Object: line.Object}
}
