package apiserver

import (
	"io"
	"net/http"
)

// watchWriter writes a watch stream's lines, {"type":TYPE,"object":OBJECT}, as
// Kubernetes spells them. The object is the JSON the store already holds, compact and
// valid, so it is copied as it is rather than re-encoded for every watcher; and the
// stream is flushed once per burst rather than once per event, so a burst of events
// leaves in few frames.
type watchWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher // nil when w cannot flush
	// pending is set when something was written since the last flush; a new
	// writer starts with its headers pending, so the first flush sends them even
	// when there is nothing to list and the client's Watch call returns.
	pending bool
}

func newWatchWriter(w http.ResponseWriter) *watchWriter {
	f, _ := w.(http.Flusher)
	return &watchWriter{w: w, flusher: f, pending: true}
}

// write writes one event without flushing it. typ is one of the fixed event types,
// which need no quoting; obj is one compact JSON value. The three parts go to the
// response's own buffer, so the watch keeps no line buffer of its own.
func (ww *watchWriter) write(typ string, obj []byte) error {
	ww.pending = true
	if _, err := io.WriteString(ww.w, `{"type":"`+typ+`","object":`); err != nil {
		return err
	}
	if _, err := ww.w.Write(obj); err != nil {
		return err
	}
	_, err := io.WriteString(ww.w, "}\n")
	return err
}

// flush sends what was written since the last flush.
func (ww *watchWriter) flush() {
	if ww.pending && ww.flusher != nil {
		ww.flusher.Flush()
	}
	ww.pending = false
}
