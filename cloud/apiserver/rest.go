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
	obj, err := api.DecodeObject(rt.kind, body)
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
		return ls.Matches(o.GetObjectMeta().Labels) && fs.Matches(api.FieldsOf(o))
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
	if p, ok := obj.(*api.Pod); ok {
		p.Status = api.PodStatus{Phase: api.PodPending}
	}
	if img, ok := obj.(*api.Image); ok {
		// An image's status describes files the server checked; only an import sets it.
		img.Status = api.ImageStatus{Phase: api.ImagePending}
	}
	var created api.Object
	if svc, ok := obj.(*api.Service); ok {
		created, err = s.createService(r.Context(), rt.kind, svc)
	} else {
		created, err = s.cfg.Store.Create(r.Context(), rt.kind, obj)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, created)
	return nil
}

// checkNamespace refuses to create into a namespace that does not exist or is being
// deleted.
func (s *Server) checkNamespace(r *http.Request, rt *route) error {
	if !rt.kind.Namespaced {
		return nil
	}
	nsKind, _ := api.LookupKind("namespaces")
	o, err := s.cfg.Store.Get(r.Context(), nsKind, "", rt.namespace)
	if errors.Is(err, store.ErrNotFound) {
		return notFound(fmt.Sprintf("namespace %q not found", rt.namespace))
	}
	if err != nil {
		return err
	}
	if ns := o.(*api.Namespace); ns.DeletionTimestamp != nil || ns.Status.Phase == api.NamespaceTerminating {
		return newStatus(http.StatusForbidden, "Forbidden", fmt.Sprintf("namespace %q is being deleted", rt.namespace))
	}
	return nil
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
	keepAllocated(cur, next)
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
		next, err := api.DecodeObject(rt.kind, out)
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
	if rt.kind.Resource == "namespaces" && protectedNamespaces[rt.name] {
		return newStatus(http.StatusForbidden, "Forbidden", fmt.Sprintf("namespace %q may not be deleted", rt.name))
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
// that empties its finalizers removes it (see removeIfFinalized). A namespace gets
// the finalizer "kubernetes", which the namespace controller removes once the
// namespace is empty; the Orphan policy adds "orphan", which the garbage collector
// removes once the dependents' owner references are gone; the Foreground policy adds
// "foregroundDeletion", which it removes once the blocking dependents are deleted.
//
// Pods are deleted gracefully besides: a pod bound to a node is only marked (deletion
// timestamp and grace period) so that its agent can run preStop hooks and stop the
// containers, and the agent then deletes it with a grace period of 0. A pod no node
// runs, or a delete with grace 0, is removed at once (finalizers permitting).
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
		if pod, ok := next.(*api.Pod); ok && pod.Spec.NodeName != "" {
			grace = api.DefaultTerminationGracePeriodSeconds
			if pod.Spec.TerminationGracePeriodSeconds != nil {
				grace = *pod.Spec.TerminationGracePeriodSeconds
			}
			if opts.GracePeriodSeconds != nil {
				grace = *opts.GracePeriodSeconds
			}
		}
		if ns, ok := next.(*api.Namespace); ok {
			addFinalizer(nm, api.FinalizerKubernetes)
			ns.Status.Phase = api.NamespaceTerminating
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

// protectedNamespaces may not be deleted: the system needs them.
var protectedNamespaces = map[string]bool{"default": true, "kube-system": true}

// bind sets a pod's node, once: the scheduler's write.
func (s *Server) bind(w http.ResponseWriter, r *http.Request, rt *route) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var b struct {
		Target struct {
			Name string `json:"name"`
		} `json:"target"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return badRequest("binding is not JSON: " + err.Error())
	}
	if b.Target.Name == "" {
		return &api.FieldError{Field: "target.name", Reason: "required"}
	}
	_, err = s.cfg.Store.GuaranteedUpdate(r.Context(), rt.kind, rt.namespace, rt.name, func(cur api.Object) (api.Object, error) {
		pod := cur.(*api.Pod)
		if pod.Spec.NodeName != "" {
			return nil, fmt.Errorf("pod %s/%s is already bound to %s: %w", rt.namespace, rt.name, pod.Spec.NodeName, store.ErrConflict)
		}
		if pod.DeletionTimestamp != nil {
			return nil, fmt.Errorf("pod %s/%s is being deleted: %w", rt.namespace, rt.name, store.ErrConflict)
		}
		pod.Spec.NodeName = b.Target.Name
		pod.Status.SetCondition(api.PodCondition{Type: api.PodScheduled, Status: api.ConditionTrue})
		return pod, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, &api.Status{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: "Success", Code: http.StatusCreated})
	return nil
}
