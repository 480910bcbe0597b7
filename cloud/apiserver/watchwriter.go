package apiserver

import (
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
	line    []byte
	// pending is set when something was written since the last flush; a new
	// writer starts with its headers pending, so the first flush sends them even
	// when there is nothing to list and the client's Watch call returns.
	pending bool
}

// maxKeptLine is the largest line buffer a watch keeps between events; a larger
// object's buffer is let go after it is written.
const maxKeptLine = 16 << 10

func newWatchWriter(w http.ResponseWriter) *watchWriter {
	f, _ := w.(http.Flusher)
	return &watchWriter{w: w, flusher: f, pending: true}
}

// write writes one event without flushing it. typ is one of the fixed event types,
// which need no quoting; obj is one compact JSON value.
func (ww *watchWriter) write(typ string, obj []byte) error {
	b := append(ww.line[:0], `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","object":`...)
	b = append(b, obj...)
	b = append(b, "}\n"...)
	_, err := ww.w.Write(b)
	if cap(b) > maxKeptLine {
		b = nil
	}
	ww.line = b
	ww.pending = true
	return err
}

// flush sends what was written since the last flush.
func (ww *watchWriter) flush() {
	if ww.pending && ww.flusher != nil {
		ww.flusher.Flush()
	}
	ww.pending = false
}
