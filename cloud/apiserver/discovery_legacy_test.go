package apiserver

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestDiscoveryListsRetiredVersions checks that kubectl can map a manifest written for
// a retired version: the version is listed, after the served (preferred) one.
func TestDiscoveryListsRetiredVersions(t *testing.T) {
	ts, _ := newTestServer(t)
	type group struct {
		Name     string `json:"name"`
		Versions []struct {
			GroupVersion string `json:"groupVersion"`
		} `json:"versions"`
		PreferredVersion struct {
			GroupVersion string `json:"groupVersion"`
		} `json:"preferredVersion"`
	}
	versionsOf := func(g group) []string {
		var out []string
		for _, v := range g.Versions {
			out = append(out, v.GroupVersion)
		}
		return out
	}
	var list struct{ Groups []group }
	a := call(t, ts, testToken, "GET", "/apis", "", nil)
	if err := json.Unmarshal(a.body, &list); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, g := range list.Groups {
		got[g.Name] = versionsOf(g)
		if g.PreferredVersion.GroupVersion != got[g.Name][0] {
			t.Errorf("group %s prefers %s, not its first version", g.Name, g.PreferredVersion.GroupVersion)
		}
	}
	for name, want := range map[string][]string{
		"apps":       {"apps/v1", "apps/v1beta2", "apps/v1beta1"},
		"extensions": {"extensions/v1beta1"},
		"batch":      {"batch/v1", "batch/v1beta1"},
	} {
		if !reflect.DeepEqual(got[name], want) {
			t.Errorf("group %s: versions %q, want %q", name, got[name], want)
		}
	}

	var apps group
	if a := call(t, ts, testToken, "GET", "/apis/apps", "", nil); json.Unmarshal(a.body, &apps) != nil || apps.PreferredVersion.GroupVersion != "apps/v1" {
		t.Errorf("/apis/apps: %d %s", a.code, a.body)
	}
	for _, path := range []string{"/apis/apps/v1beta2", "/apis/extensions/v1beta1"} {
		a := call(t, ts, testToken, "GET", path, "", nil)
		if a.code != http.StatusOK || !strings.Contains(string(a.body), `"name":"deployments"`) || !strings.Contains(string(a.body), `"groupVersion":"`+strings.TrimPrefix(path, "/apis/")+`"`) {
			t.Errorf("%s: %d %s", path, a.code, a.body)
		}
		// kubectl would warn that "deploy" could also mean deployments.extensions.
		if strings.Contains(string(a.body), "shortNames") {
			t.Errorf("%s lists short names: %s", path, a.body)
		}
	}
}
