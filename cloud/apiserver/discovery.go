package apiserver

import (
	"net/http"
	"sort"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Discovery documents, shaped as Kubernetes serves them, so that a real kubectl can
// find cloudbox's kinds (it reads /api, /apis and each group version's resource list
// before anything else).

type apiResource struct {
	Name         string   `json:"name"`
	SingularName string   `json:"singularName"`
	Namespaced   bool     `json:"namespaced"`
	Kind         string   `json:"kind"`
	Verbs        []string `json:"verbs"`
	ShortNames   []string `json:"shortNames,omitempty"`
}

type groupVersion struct {
	GroupVersion string `json:"groupVersion"`
	Version      string `json:"version"`
}

var objectVerbs = []string{"create", "delete", "get", "list", "patch", "update", "watch"}

// groupVersions maps "v1", "apps/v1", ... to the kinds served there.
func groupVersions() map[string][]*api.KindInfo {
	out := map[string][]*api.KindInfo{}
	for _, k := range api.Kinds() {
		out[k.APIVersion()] = append(out[k.APIVersion()], k)
	}
	return out
}

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) bool {
	path := strings.TrimRight(r.URL.Path, "/")
	gvs := groupVersions()
	switch {
	case path == "/api":
		writeJSON(w, http.StatusOK, map[string]any{"kind": "APIVersions", "versions": []string{"v1"},
			"serverAddressByClientCIDRs": []map[string]string{{"clientCIDR": "0.0.0.0/0", "serverAddress": r.Host}}})
		return true
	case path == "/apis":
		var groups []map[string]any
		names := make([]string, 0, len(gvs))
		for gv := range gvs {
			if strings.Contains(gv, "/") {
				names = append(names, gv)
			}
		}
		sort.Strings(names)
		for _, gv := range names {
			g, v, _ := strings.Cut(gv, "/")
			ver := groupVersion{GroupVersion: gv, Version: v}
			groups = append(groups, map[string]any{"name": g, "versions": []groupVersion{ver}, "preferredVersion": ver})
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
		return true
	}
	var gv string
	switch parts := strings.Split(strings.Trim(path, "/"), "/"); {
	case len(parts) == 2 && parts[0] == "api":
		gv = parts[1]
	case len(parts) == 3 && parts[0] == "apis":
		gv = parts[1] + "/" + parts[2]
	case len(parts) == 2 && parts[0] == "apis":
		g := parts[1]
		for name := range gvs {
			if grp, v, ok := strings.Cut(name, "/"); ok && grp == g {
				ver := groupVersion{GroupVersion: name, Version: v}
				writeJSON(w, http.StatusOK, map[string]any{"kind": "APIGroup", "apiVersion": "v1", "name": g,
					"versions": []groupVersion{ver}, "preferredVersion": ver})
				return true
			}
		}
		return false
	default:
		return false
	}
	kinds, ok := gvs[gv]
	if !ok {
		return false
	}
	var resources []apiResource
	for _, k := range kinds {
		resources = append(resources, apiResource{Name: k.Resource, SingularName: k.Singular, Namespaced: k.Namespaced,
			Kind: k.Kind, Verbs: objectVerbs, ShortNames: k.ShortNames})
		for _, sub := range strategyFor(k).subresources() {
			if sub.Verbs != nil {
				resources = append(resources, apiResource{Name: k.Resource + "/" + sub.Name, Namespaced: k.Namespaced, Kind: k.Kind, Verbs: sub.Verbs})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
	return true
}
