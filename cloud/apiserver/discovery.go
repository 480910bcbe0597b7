package apiserver

import (
	"maps"
	"net/http"
	"slices"
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

// groupVersions maps "v1", "apps/v1", ... to the kinds served there. The retired
// versions (apps/v1beta2, extensions/v1beta1, ...) list the kinds of the version they
// are read as, so that kubectl finds where to send a manifest written for them.
func groupVersions() map[string][]*api.KindInfo {
	out := map[string][]*api.KindInfo{}
	for _, k := range api.Kinds() {
		out[k.APIVersion()] = append(out[k.APIVersion()], k)
	}
	for alias, served := range api.GroupAliases() {
		if kinds, ok := out[served]; ok {
			out[alias] = kinds
		}
	}
	return out
}

// apiGroups lists the named groups with their versions, the served one first (and
// preferred, so that kubectl uses it unless a manifest says otherwise), in name order.
func apiGroups(gvs map[string][]*api.KindInfo) []map[string]any {
	aliases := api.GroupAliases()
	versions := map[string][]groupVersion{}
	for gv := range gvs {
		if g, v, ok := strings.Cut(gv, "/"); ok {
			versions[g] = append(versions[g], groupVersion{GroupVersion: gv, Version: v})
		}
	}
	var groups []map[string]any
	for _, g := range slices.Sorted(maps.Keys(versions)) {
		vs := versions[g]
		sort.Slice(vs, func(i, j int) bool {
			_, ri := aliases[vs[i].GroupVersion]
			_, rj := aliases[vs[j].GroupVersion]
			return !ri && rj || ri == rj && vs[i].Version > vs[j].Version
		})
		groups = append(groups, map[string]any{"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": vs, "preferredVersion": vs[0]})
	}
	return groups
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
		writeJSON(w, http.StatusOK, map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": apiGroups(gvs)})
		return true
	}
	var gv string
	switch parts := strings.Split(strings.Trim(path, "/"), "/"); {
	case len(parts) == 2 && parts[0] == "api":
		gv = parts[1]
	case len(parts) == 3 && parts[0] == "apis":
		gv = parts[1] + "/" + parts[2]
	case len(parts) == 2 && parts[0] == "apis":
		for _, g := range apiGroups(gvs) {
			if g["name"] == parts[1] {
				writeJSON(w, http.StatusOK, g)
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
	// A short name belongs to the served version only: kubectl warns when "deploy"
	// could also mean deployments.extensions.
	_, retired := api.GroupAliases()[gv]
	var resources []apiResource
	for _, k := range kinds {
		r := apiResource{Name: k.Resource, SingularName: k.Singular, Namespaced: k.Namespaced, Kind: k.Kind, Verbs: objectVerbs}
		if !retired {
			r.ShortNames = k.ShortNames
		}
		resources = append(resources, r)
		for _, sub := range strategyFor(k).subresources() {
			if sub.Verbs != nil {
				resources = append(resources, apiResource{Name: k.Resource + "/" + sub.Name, Namespaced: k.Namespaced, Kind: k.Kind, Verbs: sub.Verbs})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
	return true
}
