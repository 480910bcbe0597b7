package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

// Pods start Pending, are bound to a node once (by the scheduler), are deleted
// gracefully while a node runs them, and stream their logs and exec sessions from
// that node's agent (stream.go).
func init() {
	registerStrategy("pods", &strategy{
		PrepareForCreate: startStatus(api.PodStatus{Phase: api.PodPending}),
		GracePeriod:      gracePeriod(podGracePeriod),
		Subresources: []subresource{
			{Name: "binding", Verbs: []string{"create"},
				Methods: map[string]subresourceHandler{http.MethodPost: (*Server).bind}},
			{Name: "log", Verbs: []string{"get"}, OnlyMethods: true,
				Methods: map[string]subresourceHandler{http.MethodGet: (*Server).podLog}},
			{Name: "exec", Verbs: []string{"create", "get"}, OnlyMethods: true,
				Methods: map[string]subresourceHandler{http.MethodGet: (*Server).podExec, http.MethodPost: (*Server).podExec}},
		},
	})
}

// podGracePeriod gives a pod bound to a node its termination grace period (or the
// one the delete asked for), so that the delete only marks it and its agent can run
// preStop hooks and stop the containers; the agent then deletes it with a grace
// period of 0. A pod no node runs goes at once.
func podGracePeriod(pod *api.Pod, requested *int64) int64 {
	if pod.Spec.NodeName == "" {
		return 0
	}
	grace := int64(api.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if requested != nil {
		grace = *requested
	}
	return grace
}

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
	_, err = storeUpdate(r.Context(), s.cfg.Store, rt.namespace, rt.name, func(pod *api.Pod) (*api.Pod, error) {
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
