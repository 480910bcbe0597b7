package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

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

	// sendInitialEvents (client-go's watch-list, on by default since 1.32) asks for
	// the current objects first and a bookmark marking their end, whatever the
	// resourceVersion: the store's list is never older than the one asked for.
	sendInitial := q.Get("sendInitialEvents") == "true"
	var initial []api.Object
	if from == 0 || sendInitial {
		res, err := s.cfg.Store.List(ctx, rt.kind, store.ListOptions{Namespace: rt.namespace, Predicate: pred})
		if err != nil {
			return err
		}
		initial, from = res.Items, res.Revision
	}
	wt, err := s.cfg.Store.Follow(rt.kind, store.WatchOptions{Namespace: rt.namespace, FromRevision: from})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	ww := newWatchWriter(w)
	for _, o := range initial {
		b, err := json.Marshal(o)
		if err != nil || ww.write(string(store.Added), b) != nil {
			return nil
		}
	}
	if sendInitial && ww.write("BOOKMARK", initialEventsEnd(rt.kind, from)) != nil {
		return nil
	}
	ww.flush()
	s.metrics.watchers.Inc()
	defer s.metrics.watchers.Dec()
	byUser := s.metrics.watchersByUser.WithLabelValues(userOf(r).Name)
	byUser.Inc()
	defer byUser.Dec()

	bookmark := time.NewTicker(bookmarkEvery)
	defer bookmark.Stop()
	last := from
	sendBookmark := func() error {
		o := rt.kind.NewObject()
		o.GetObjectMeta().ResourceVersion = strconv.FormatUint(last, 10)
		b, _ := json.Marshal(o)
		return ww.write("BOOKMARK", b)
	}
	for {
		evs, advanced, err := wt.Next()
		if errors.Is(err, store.ErrClosed) {
			ww.flush()
			return nil
		}
		if err != nil {
			b, _ := json.Marshal(toStatus(err, rt.kind, ""))
			if ww.write("ERROR", b) == nil {
				ww.flush()
			}
			return nil
		}
		for _, ev := range evs {
			last = ev.Revision
			if s.watchWants(pred, ev) && ww.write(string(ev.Type), ev.Object) != nil {
				return nil
			}
		}
		if advanced == nil {
			// More can be read at once; keep to the deadline and the bookmarks meanwhile.
			select {
			case <-ctx.Done():
				return nil
			case <-bookmark.C:
				if sendBookmark() != nil {
					return nil
				}
			default:
			}
			continue
		}
		// Flush only once caught up: a burst goes out in one flush, a lone event at once.
		ww.flush()
		select {
		case <-ctx.Done():
			return nil
		case <-wt.Closing():
			return nil
		case <-bookmark.C:
			if sendBookmark() != nil {
				return nil
			}
		case <-advanced:
		}
	}
}

// watchWants reports whether a watch's selector, pred (nil for none), lets ev through.
func (s *Server) watchWants(pred func(api.Object) bool, ev store.Event) bool {
	if pred == nil {
		return true
	}
	o, err := s.watchDecodes.decode(ev)
	if err != nil {
		s.log.Warn("watch: undecodable event", zap.String("resource", ev.Resource), zap.Uint64("revision", ev.Revision), zap.Error(err))
		return false
	}
	return pred(o)
}

// initialEventsEnd is the bookmark that ends a watch-list's initial events, as
// Kubernetes sends it: the list's revision, annotated k8s.io/initial-events-end.
func initialEventsEnd(k *api.KindInfo, rev uint64) []byte {
	o := k.NewObject()
	m := o.GetObjectMeta()
	m.ResourceVersion = strconv.FormatUint(rev, 10)
	m.Annotations = map[string]string{"k8s.io/initial-events-end": "true"}
	b, _ := json.Marshal(o)
	return b
}
