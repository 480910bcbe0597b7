package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

// watchEvent is one line of a watch stream, as Kubernetes writes it.
type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// bookmarkEvery is how often an idle watch gets a BOOKMARK carrying the current
// revision, so a client that reconnects after a quiet spell resumes from a recent
// revision instead of one that may have been compacted.
const bookmarkEvery = 30 * time.Second

// watch streams changes as newline-delimited JSON. Without a resourceVersion (or with
// "0") it first sends the current objects as ADDED, as Kubernetes does, then the
// changes after the revision that list was read at.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, rt *route) error {
	q := r.URL.Query()
	pred, err := selectorPredicate(q.Get("labelSelector"), q.Get("fieldSelector"))
	if err != nil {
		return err
	}
	if rt.name != "" {
		name := rt.name
		inner := pred
		pred = func(o api.Object) bool {
			return o.GetObjectMeta().Name == name && (inner == nil || inner(o))
		}
	}
	var from uint64
	if rv := q.Get("resourceVersion"); rv != "" {
		from, err = strconv.ParseUint(rv, 10, 64)
		if err != nil {
			return badRequest("resourceVersion must be a revision number")
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.watchCtx, cancel)
	defer stop()

	var initial []api.Object
	if from == 0 {
		res, err := s.cfg.Store.List(ctx, rt.kind, store.ListOptions{Namespace: rt.namespace, Predicate: pred})
		if err != nil {
			return err
		}
		initial, from = res.Items, res.Revision
	}
	events, err := s.cfg.Store.Watch(ctx, rt.kind, store.WatchOptions{Namespace: rt.namespace, FromRevision: from})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	send := func(typ string, obj []byte) bool {
		if err := enc.Encode(watchEvent{Type: typ, Object: obj}); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for _, o := range initial {
		b, err := json.Marshal(o)
		if err != nil || !send(string(store.Added), b) {
			return nil
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	s.metrics.watchers.Inc()
	defer s.metrics.watchers.Dec()
	byUser := s.metrics.watchersByUser.WithLabelValues(userOf(r).Name)
	byUser.Inc()
	defer byUser.Dec()

	bookmark := time.NewTicker(bookmarkEvery)
	defer bookmark.Stop()
	last := from
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-bookmark.C:
			o := rt.kind.NewObject()
			o.GetObjectMeta().ResourceVersion = strconv.FormatUint(last, 10)
			b, _ := json.Marshal(o)
			if !send("BOOKMARK", b) {
				return nil
			}
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if ev.Err != nil {
				st := toStatus(ev.Err, rt.kind, "")
				b, _ := json.Marshal(st)
				send("ERROR", b)
				return nil
			}
			last = ev.Revision
			if pred != nil {
				o, err := ev.Decode()
				if err != nil {
					s.log.Warn(fmt.Sprintf("watch: undecodable %s event", ev.Resource))
					continue
				}
				if !pred(o) {
					continue
				}
			}
			if !send(string(ev.Type), ev.Object) {
				return nil
			}
		}
	}
}
