package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

// readBody reads a request body up to the size limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, newStatus(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("request body is larger than %d bytes", s.cfg.MaxBodyBytes))
	}
	if err != nil {
		return nil, badRequest("reading body: " + err.Error())
	}
	if len(body) == 0 {
		return nil, badRequest("request body is empty")
	}
	return body, nil
}

// decodeBody decodes a JSON or YAML object of the route's kind, and checks that its
// namespace and name agree with the path (filling them from the path when absent).
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, rt *route) (api.Object, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	dec, err := requestDecoder(r)
	if err != nil {
		return nil, err
	}
	obj, warnings, err := dec.Object(rt.kind, body)
	addWarnings(w, warnings)
	if err != nil {
		if errors.Is(err, api.ErrInvalid) {
			return nil, err
		}
		return nil, badRequest(err.Error())
	}
	meta := obj.GetObjectMeta()
	if rt.kind.Namespaced {
		if meta.Namespace == "" {
			meta.Namespace = rt.namespace
		} else if meta.Namespace != rt.namespace {
			return nil, badRequest(fmt.Sprintf("metadata.namespace %q does not match the namespace in the path (%q)", meta.Namespace, rt.namespace))
		}
	} else if meta.Namespace != "" {
		return nil, &api.FieldError{Field: "metadata.namespace", Reason: rt.kind.Resource + " are not namespaced: leave it empty"}
	}
	if rt.name != "" {
		if meta.Name == "" {
			meta.Name = rt.name
		} else if meta.Name != rt.name {
			return nil, badRequest(fmt.Sprintf("metadata.name %q does not match the name in the path (%q)", meta.Name, rt.name))
		}
	}
	return obj, nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, rt *route) error {
	obj, err := s.cfg.Store.Get(r.Context(), rt.kind, rt.namespace, rt.name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, obj)
	return nil
}

// list answers a collection GET as a Kubernetes List.
func (s *Server) list(w http.ResponseWriter, r *http.Request, rt *route) error {
	q := r.URL.Query()
	pred, err := selectorPredicate(q.Get("labelSelector"), q.Get("fieldSelector"))
	if err != nil {
		return err
	}
	limit := 0
	if l := q.Get("limit"); l != "" {
		if _, err := fmt.Sscanf(l, "%d", &limit); err != nil || limit < 0 {
			return badRequest("limit must be a non-negative integer")
		}
	}
	res, err := s.cfg.Store.List(r.Context(), rt.kind, store.ListOptions{
		Namespace: rt.namespace, Predicate: pred, Limit: limit, Continue: q.Get("continue"),
	})
	if err != nil {
		return err
	}
	items := res.Items
	if items == nil {
		items = []api.Object{}
	}
	writeJSON(w, http.StatusOK, struct {
		api.TypeMeta `json:",inline"`
		Metadata     api.ListMeta `json:"metadata"`
		Items        []api.Object `json:"items"`
	}{
		TypeMeta: api.TypeMeta{APIVersion: rt.kind.APIVersion(), Kind: rt.kind.Kind + "List"},
		Metadata: api.ListMeta{ResourceVersion: fmt.Sprint(res.Revision), Continue: res.Continue},
		Items:    items,
	})
	return nil
}

// selectorPredicate builds a store predicate from label and field selectors.
func selectorPredicate(labelSel, fieldSel string) (func(api.Object) bool, error) {
	if labelSel == "" && fieldSel == "" {
		return nil, nil
	}
	ls, err := api.ParseSelector(labelSel)
	if err != nil {
		return nil, badRequest("labelSelector: " + err.Error())
	}
	fs, err := api.ParseFieldSelector(fieldSel)
	if err != nil {
		return nil, badRequest("fieldSelector: " + err.Error())
	}
	return func(o api.Object) bool {
		// FieldsOf builds a map: a watch with only a label selector, which tests every
		// event, skips it.
		return ls.Matches(o.GetObjectMeta().Labels) && (fs.Empty() || fs.Matches(api.FieldsOf(o)))
	}, nil
}

// admit defaults and validates an object before it is stored.
func admit(obj api.Object) error {
	api.Default(obj)
	return api.Validate(obj)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, rt *route) error {
	obj, err := s.decodeBody(w, r, rt)
	if err != nil {
		return err
	}
	meta := obj.GetObjectMeta()
	// Fields the server owns are cleared, so a manifest exported with -o yaml can be
	// applied to another cluster.
	meta.UID, meta.ResourceVersion, meta.CreationTimestamp = "", "", nil
	meta.DeletionTimestamp, meta.DeletionGracePeriodSeconds = nil, nil
	meta.Generation = 0
	if err := admit(obj); err != nil {
		return err
	}
	if err := s.checkNamespace(r, rt); err != nil {
		return err
	}
	created, err := s.storeCreate(r.Context(), rt.kind, obj)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, created)
	return nil
}

// storeCreate stores a new object, defaulted and valid, once its kind's strategy has
// prepared it; a failed write gives back what the preparation took.
func (s *Server) storeCreate(ctx context.Context, k *api.KindInfo, obj api.Object) (api.Object, error) {
	var u undo
	if prepare := strategyFor(k).PrepareForCreate; prepare != nil {
		if err := prepare(s, ctx, obj, &u); err != nil {
			u.run()
			return nil, err
		}
	}
	created, err := s.cfg.Store.Create(ctx, k, obj)
	if err != nil {
		u.run()
		return nil, err
	}
	return created, nil
}

// update replaces the object (PUT). On the main resource the status is kept from the
// stored object; on /status only the status is taken from the body.
func (s *Server) update(w http.ResponseWriter, r *http.Request, rt *route) error {
	if rt.name == "" {
		return methodNotAllowed("PUT needs an object name in the path")
	}
	obj, err := s.decodeBody(w, r, rt)
	if err != nil {
		return err
	}
	rv := obj.GetObjectMeta().ResourceVersion
	updated, err := s.guaranteedUpdate(r.Context(), rt, func(cur api.Object) (api.Object, error) {
		if rv != "" && rv != cur.GetObjectMeta().ResourceVersion {
			return nil, fmt.Errorf("%s %q: %w", rt.kind.Resource, rt.name, store.ErrConflict)
		}
		return merged(rt, cur, api.DeepCopy(obj))
	})
	if err != nil {
		return err
	}
	if updated, err = s.removeIfFinalized(r.Context(), rt, updated); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, updated)
	return nil
}

// merged combines the stored object cur with the incoming next as the subresource
// says, validates the result and bumps the generation when the spec changed.
func merged(rt *route, cur, next api.Object) (api.Object, error) {
	if rt.sub == "status" {
		out := api.DeepCopy(cur)
		setField(out, "Status", getField(next, "Status"))
		return out, nil
	}
	setField(next, "Status", getField(cur, "Status"))
	nm, cm := next.GetObjectMeta(), cur.GetObjectMeta()
	nm.UID, nm.CreationTimestamp = cm.UID, cm.CreationTimestamp
	nm.DeletionTimestamp, nm.DeletionGracePeriodSeconds = cm.DeletionTimestamp, cm.DeletionGracePeriodSeconds
	nm.ResourceVersion = cm.ResourceVersion
	nm.Generation = cm.Generation
	if prepare := rt.strategy.PrepareForUpdate; prepare != nil {
		prepare(cur, next)
	}
	if err := admit(next); err != nil {
		return nil, err
	}
	if err := api.ValidateUpdate(cur, next); err != nil {
		return nil, err
	}
	if !reflect.DeepEqual(getField(cur, "Spec"), getField(next, "Spec")) {
		nm.Generation++
	}
	return next, nil
}

// getField and setField reach the Spec and Status fields every kind has, so the
// status subresource needs no per-kind code.
func getField(obj api.Object, name string) any {
	f := reflect.ValueOf(obj).Elem().FieldByName(name)
	if !f.IsValid() {
		return nil
	}
	return f.Interface()
}

func setField(obj api.Object, name string, v any) {
	f := reflect.ValueOf(obj).Elem().FieldByName(name)
	if f.IsValid() && v != nil {
		f.Set(reflect.ValueOf(v))
	}
}

// guaranteedUpdate is Store.GuaranteedUpdate with the strategy's hooks around a write
// of the main resource: BeginUpdate takes what fn's result needs before the write, a
// failed write gives it back, and AfterUpdate runs once the write is in.
func (s *Server) guaranteedUpdate(ctx context.Context, rt *route, fn store.UpdateFunc) (api.Object, error) {
	st := rt.strategy
	if rt.sub != "" || (st.BeginUpdate == nil && st.AfterUpdate == nil) {
		return s.cfg.Store.GuaranteedUpdate(ctx, rt.kind, rt.namespace, rt.name, fn)
	}
	var u undo
	var before api.Object
	out, err := s.cfg.Store.GuaranteedUpdate(ctx, rt.kind, rt.namespace, rt.name, func(cur api.Object) (api.Object, error) {
		next, err := fn(cur)
		if err != nil {
			return nil, err
		}
		before = cur
		if st.BeginUpdate != nil {
			if err := st.BeginUpdate(s, ctx, cur, next, &u); err != nil {
				return nil, err
			}
		}
		return next, nil
	})
	if err != nil {
		u.run()
		return nil, err
	}
	if st.AfterUpdate != nil {
		st.AfterUpdate(s, ctx, before, out)
	}
	return out, nil
}

// patch applies a JSON merge patch (RFC 7386). Strategic merge patches are treated as
// merge patches, which is right for every field whose lists are replaced whole.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, rt *route) error {
	if rt.name == "" {
		return methodNotAllowed("PATCH needs an object name in the path")
	}
	ct := r.Header.Get("Content-Type")
	switch ct {
	case "application/merge-patch+json", "application/strategic-merge-patch+json", "application/json", "":
	default:
		return newStatus(http.StatusUnsupportedMediaType, "UnsupportedMediaType",
			"patch content type "+ct+" is not supported: use application/merge-patch+json")
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var patchDoc any
	if err := json.Unmarshal(body, &patchDoc); err != nil {
		return badRequest("patch is not JSON: " + err.Error())
	}
	if ct == "application/strategic-merge-patch+json" {
		patchDoc = dropPatchDirectives(patchDoc)
	}
	dec, err := requestDecoder(r)
	if err != nil {
		return err
	}
	updated, err := s.guaranteedUpdate(r.Context(), rt, func(cur api.Object) (api.Object, error) {
		curJSON, err := json.Marshal(cur)
		if err != nil {
			return nil, err
		}
		var doc any
		if err := json.Unmarshal(curJSON, &doc); err != nil {
			return nil, err
		}
		out, err := json.Marshal(mergePatch(doc, patchDoc))
		if err != nil {
			return nil, err
		}
		next, warnings, err := dec.Object(rt.kind, out)
		addWarnings(w, warnings)
		if err != nil {
			return nil, badRequest("patched object does not decode: " + err.Error())
		}
		nm := next.GetObjectMeta()
		if nm.Name != rt.name || nm.Namespace != rt.namespace {
			return nil, badRequest("a patch may not change metadata.name or metadata.namespace")
		}
		if prv := nm.ResourceVersion; prv != "" && prv != cur.GetObjectMeta().ResourceVersion {
			return nil, fmt.Errorf("%s %q: %w", rt.kind.Resource, rt.name, store.ErrConflict)
		}
		return merged(rt, cur, next)
	})
	if err != nil {
		return err
	}
	if updated, err = s.removeIfFinalized(r.Context(), rt, updated); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, updated)
	return nil
}

// mergePatch applies an RFC 7386 merge patch to doc.
func mergePatch(doc, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	dm, ok := doc.(map[string]any)
	if !ok {
		dm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(dm, k)
			continue
		}
		dm[k] = mergePatch(dm[k], v)
	}
	return dm
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, rt *route) error {
	if rt.name == "" {
		return methodNotAllowed("DELETE needs an object name in the path (collection delete is not supported)")
	}
	if rt.sub != "" {
		return methodNotAllowed("DELETE is not allowed on a subresource")
	}
	if validate := rt.strategy.ValidateDelete; validate != nil {
		if err := validate(rt.namespace, rt.name); err != nil {
			return err
		}
	}
	opts, err := s.deleteOptions(r)
	if err != nil {
		return err
	}
	obj, err := s.deleteObject(r.Context(), rt, opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, obj)
	return nil
}

// deleteOptions are Kubernetes's DeleteOptions: a grace period, a propagation policy
// and a precondition, from the body or the query.
type deleteOptions struct {
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`
	// PropagationPolicy is Background (the default: the garbage collector deletes the
	// dependents after the owner is gone), Orphan (the dependents lose their owner
	// reference and stay) or Foreground, which cloudbox treats as Background.
	PropagationPolicy string `json:"propagationPolicy,omitempty"`
	Preconditions     struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"preconditions"`
}

func (s *Server) deleteOptions(r *http.Request) (deleteOptions, error) {
	var opts deleteOptions
	if body, _ := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes)); len(body) > 0 {
		if err := json.Unmarshal(body, &opts); err != nil {
			return opts, badRequest("delete options are not JSON: " + err.Error())
		}
	}
	q := r.URL.Query()
	if g := q.Get("gracePeriodSeconds"); g != "" {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil || n < 0 {
			return opts, badRequest("gracePeriodSeconds must be a non-negative integer")
		}
		opts.GracePeriodSeconds = &n
	}
	if opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds < 0 {
		return opts, badRequest("gracePeriodSeconds must not be negative")
	}
	if p := q.Get("propagationPolicy"); p != "" {
		opts.PropagationPolicy = p
	}
	// Older clients say orphanDependents=true for Orphan.
	if q.Get("orphanDependents") == "true" && opts.PropagationPolicy == "" {
		opts.PropagationPolicy = api.PropagationOrphan
	}
	switch opts.PropagationPolicy {
	case "", api.PropagationBackground, api.PropagationForeground, api.PropagationOrphan:
	default:
		return opts, badRequest(fmt.Sprintf("propagationPolicy %q must be one of Background, Foreground, Orphan", opts.PropagationPolicy))
	}
	return opts, nil
}

// deleteObject deletes by the generic finalizer rule: an object with finalizers (or
// that a delete gives one) is only marked, with a deletion timestamp, and the update
// that empties its finalizers removes it (see removeIfFinalized). The Orphan policy
// adds "orphan", which the garbage collector removes once the dependents' owner
// references are gone; the Foreground policy adds "foregroundDeletion", which it
// removes once the blocking dependents are deleted; the strategy's PrepareForDelete
// may mark the object otherwise (a namespace).
//
// An object the strategy gives a grace period (a pod on a node) is only marked too,
// with the deletion timestamp and the grace period, and the one who waits for it (the
// agent) deletes it with a grace period of 0. An object without one, or a delete
// with grace 0, is removed at once (finalizers permitting).
func (s *Server) deleteObject(ctx context.Context, rt *route, opts deleteOptions) (api.Object, error) {
	for {
		cur, err := s.cfg.Store.Get(ctx, rt.kind, rt.namespace, rt.name)
		if err != nil {
			return nil, err
		}
		cm := cur.GetObjectMeta()
		rv := cm.ResourceVersion
		if want := opts.Preconditions.ResourceVersion; want != "" && want != rv {
			return nil, fmt.Errorf("%s %s: %w", rt.kind.Resource, cm.Key(), store.ErrConflict)
		}
		next := api.DeepCopy(cur)
		nm := next.GetObjectMeta()
		grace := int64(0)
		if gracePeriod := rt.strategy.GracePeriod; gracePeriod != nil {
			grace = gracePeriod(next, opts.GracePeriodSeconds)
		}
		if prepare := rt.strategy.PrepareForDelete; prepare != nil {
			prepare(next, opts.PropagationPolicy)
		} else if opts.PropagationPolicy == api.PropagationOrphan {
			addFinalizer(nm, api.FinalizerOrphan)
		} else if opts.PropagationPolicy == api.PropagationForeground {
			addFinalizer(nm, api.FinalizerForegroundDeletion)
		}
		var out api.Object
		if len(nm.Finalizers) == 0 && grace == 0 {
			out, err = s.storeDelete(ctx, rt.kind, rt.namespace, rt.name, rv)
		} else {
			if cm.DeletionTimestamp != nil && cm.DeletionGracePeriodSeconds != nil && *cm.DeletionGracePeriodSeconds <= grace &&
				len(nm.Finalizers) == len(cm.Finalizers) {
				return cur, nil // already being deleted, at least as fast
			}
			if nm.DeletionTimestamp == nil {
				nm.DeletionTimestamp = api.Now()
			}
			if nm.DeletionGracePeriodSeconds == nil || grace < *nm.DeletionGracePeriodSeconds {
				nm.DeletionGracePeriodSeconds = &grace
			}
			out, err = s.cfg.Store.Update(ctx, rt.kind, next)
		}
		if errors.Is(err, store.ErrConflict) && opts.Preconditions.ResourceVersion == "" {
			continue // the object changed under us (a status write): decide again
		}
		return out, err
	}
}

func addFinalizer(m *api.ObjectMeta, f string) {
	if !slices.Contains(m.Finalizers, f) {
		m.Finalizers = append(m.Finalizers, f)
	}
}

// storeDelete is Store.Delete followed by the strategy's AfterDelete.
func (s *Server) storeDelete(ctx context.Context, k *api.KindInfo, namespace, name, rv string) (api.Object, error) {
	out, err := s.cfg.Store.Delete(ctx, k, namespace, name, rv)
	if err != nil {
		return nil, err
	}
	if after := strategyFor(k).AfterDelete; after != nil {
		after(s, ctx, out)
	}
	return out, nil
}

// removeIfFinalized removes an object that an update left marked for deletion with
// no finalizers and no grace period to wait for, and returns its last state; any
// other object is returned as it is. A conflict means a later write changed the
// object, and that write's own check decides.
func (s *Server) removeIfFinalized(ctx context.Context, rt *route, obj api.Object) (api.Object, error) {
	m := obj.GetObjectMeta()
	if m.DeletionTimestamp == nil || len(m.Finalizers) > 0 || m.DeletionGracePeriodSeconds == nil || *m.DeletionGracePeriodSeconds > 0 {
		return obj, nil
	}
	out, err := s.storeDelete(ctx, rt.kind, m.Namespace, m.Name, m.ResourceVersion)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return obj, nil
	}
	return out, err
}
