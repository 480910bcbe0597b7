package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// maxWatchEvent is the longest line a watch stream may send: one object with its
// envelope.
const maxWatchEvent = 16 << 20

// Event is one watch event.
type Event struct {
	Type   string // ADDED, MODIFIED, DELETED, BOOKMARK
	Object api.Object
	// Err is set on the last event of a stream that ended in an error (for example
	// Gone: list again).
	Err error
}

// Watch streams changes to a kind until ctx is cancelled or the server ends the
// stream; then the channel closes.
func (c *Client) Watch(ctx context.Context, k *api.KindInfo, namespace string, opts ListOptions) (<-chan Event, error) {
	ws, err := c.openWatch(ctx, k, namespace, opts)
	if err != nil {
		return nil, err
	}
	ch := make(chan Event, 64)
	go func() {
		defer close(ch)
		defer ws.Close()
		for ev, ok := ws.Next(); ok; ev, ok = ws.Next() {
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// watchStream reads the events of one open watch in the caller's goroutine, so an
// informer needs no goroutine and channel of its own between the connection and its
// cache. It is not safe for concurrent use.
type watchStream struct {
	kind *api.KindInfo
	body io.ReadCloser
	sc   *bufio.Scanner
	done bool
}

// openWatch starts a watch of kind k. Reading the stream ends when ctx is cancelled.
func (c *Client) openWatch(ctx context.Context, k *api.KindInfo, namespace string, opts ListOptions) (*watchStream, error) {
	q := url.Values{"watch": {"1"}}
	if opts.LabelSelector != "" {
		q.Set("labelSelector", opts.LabelSelector)
	}
	if opts.FieldSelector != "" {
		q.Set("fieldSelector", opts.FieldSelector)
	}
	if opts.ResourceVersion != "" {
		q.Set("resourceVersion", opts.ResourceVersion)
	}
	body, err := c.getStream(ctx, path(k, namespace, "", ""), q)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(body)
	// The buffer starts at the scanner's 4 KiB and grows to the largest event seen:
	// a process holds one per kind watched, and most events are small.
	sc.Buffer(nil, maxWatchEvent)
	return &watchStream{kind: k, body: body, sc: sc}, nil
}

// Next waits for the next event. It returns false once the stream has ended: the
// server closed it, the connection broke or ctx was cancelled. An event with Err set
// is the last one.
func (s *watchStream) Next() (Event, bool) {
	if s.done || !s.sc.Scan() {
		s.done = true
		return Event{}, false
	}
	ev := decodeWatchEvent(s.kind, s.sc.Bytes())
	s.done = ev.Err != nil
	return ev, true
}

// Close ends the watch.
func (s *watchStream) Close() error { return s.body.Close() }

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
