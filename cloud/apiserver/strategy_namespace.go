package apiserver

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

// A deleted namespace goes Terminating and keeps the finalizer "kubernetes" until
// the namespace controller has emptied it; while it is terminating (or missing),
// nothing is created in it (checkNamespace). The namespaces the system needs may not
// be deleted.
func init() {
	registerStrategy("namespaces", &strategy{
		ValidateDelete: func(_, name string) error {
			if protectedNamespaces[name] {
				return newStatus(http.StatusForbidden, "Forbidden", fmt.Sprintf("namespace %q may not be deleted", name))
			}
			return nil
		},
		// The namespace controller deletes the contents whatever the policy says.
		PrepareForDelete: prepareForDelete(func(ns *api.Namespace, _ string) {
			addFinalizer(&ns.ObjectMeta, api.FinalizerKubernetes)
			ns.Status.Phase = api.NamespaceTerminating
		}),
	})
}

// protectedNamespaces may not be deleted: the system needs them.
var protectedNamespaces = map[string]bool{"default": true, "kube-system": true}

// checkNamespace refuses to create into a namespace that does not exist or is being
// deleted.
func (s *Server) checkNamespace(r *http.Request, rt *route) error {
	if !rt.kind.Namespaced {
		return nil
	}
	ns, err := storeGet[*api.Namespace](r.Context(), s.cfg.Store, "", rt.namespace)
	if errors.Is(err, store.ErrNotFound) {
		return notFound(fmt.Sprintf("namespace %q not found", rt.namespace))
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == api.NamespaceTerminating {
		return newStatus(http.StatusForbidden, "Forbidden", fmt.Sprintf("namespace %q is being deleted", rt.namespace))
	}
	return nil
}
