package apiserver

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

// serveRotateKey makes a new key seal secrets and re-seals every secret with it, so
// that the old keys protect nothing written after the rotation.
func (s *Server) serveRotateKey(w http.ResponseWriter, r *http.Request) {
	if !userOf(r).Admin {
		writeError(w, newStatus(http.StatusForbidden, "Forbidden", "rotating keys needs the admin token"), nil, "")
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, methodNotAllowed("use POST"), nil, "")
		return
	}
	if s.cfg.KeyRing == nil {
		writeError(w, badRequest("this server does not seal secrets"), nil, "")
		return
	}
	if err := s.cfg.KeyRing.Rotate(); err != nil {
		writeError(w, err, nil, "")
		return
	}
	k := api.KindOfType[*api.Secret]()
	l, err := s.cfg.Store.List(r.Context(), k, store.ListOptions{})
	if err != nil {
		writeError(w, err, k, "")
		return
	}
	resealed := 0
	for _, o := range l.Items {
		m := o.GetObjectMeta()
		_, err := s.cfg.Store.GuaranteedUpdate(r.Context(), k, m.Namespace, m.Name, func(cur api.Object) (api.Object, error) { return cur, nil })
		if err != nil {
			s.log.Warn("re-sealing a secret failed", zap.String("secret", m.Key()), zap.Error(err))
			continue
		}
		resealed++
	}
	writeJSON(w, http.StatusOK, map[string]any{"primaryKey": s.cfg.KeyRing.Primary(), "resealedSecrets": resealed})
}
