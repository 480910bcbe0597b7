package apiserver

import (
	"testing"
)

// authzRow is one row of the authorization table: may user do verb on
// resource/sub?
type authzRow struct {
	verb, resource, sub string
	admin, node         bool
}

// authzTable has a row for every route a node might reach, and for every
// subresource a strategy declares (TestAuthorizationTableCoversEverySubresource).
var authzTable = []authzRow{
	{"get", "pods", "", true, true},
	{"list", "secrets", "", true, true}, // nodes still read everything: the multi-node issue narrows it
	{"watch", "pods", "", true, true},
	{"create", "pods", "", true, true},
	{"update", "pods", "status", true, true},
	{"delete", "pods", "", true, true},
	{"create", "pods", "binding", true, true},
	{"get", "pods", "log", true, true},
	{"create", "pods", "exec", true, false},
	{"get", "pods", "exec", true, false},
	{"update", "nodes", "status", true, true},
	{"get", "nodes", "tunnel", true, true},
	{"create", "nodes", "images", true, false},
	{"get", "nodes", "images", true, false},
	{"create", "events", "", true, true},
	{"update", "persistentvolumeclaims", "status", true, true},
	{"update", "instances", "status", true, true},
	{"update", "instances", "", true, false},
	{"get", "instances", "log", true, true},
	{"update", "volumes", "status", true, true},
	{"delete", "volumes", "", true, false},
	{"create", "namespaces", "", true, false},
	{"update", "services", "", true, false},
	{"create", "secrets", "", true, false},
	{"update", "images", "status", true, false},
}

func TestAuthorizationTable(t *testing.T) {
	admin, node := &User{Name: "admin", Admin: true}, &User{Name: "system:node"}
	for _, r := range authzTable {
		if got := admin.allowed(r.verb, r.resource, r.sub); got != r.admin {
			t.Errorf("admin %s %s/%s: allowed %v, want %v", r.verb, r.resource, r.sub, got, r.admin)
		}
		if got := node.allowed(r.verb, r.resource, r.sub); got != r.node {
			t.Errorf("node %s %s/%s: allowed %v, want %v", r.verb, r.resource, r.sub, got, r.node)
		}
	}
}

// A subresource added to a strategy must get its row in the table above.
func TestAuthorizationTableCoversEverySubresource(t *testing.T) {
	rows := map[string]bool{}
	for _, r := range authzTable {
		rows[r.resource+"/"+r.sub] = true
	}
	for resource, st := range strategies {
		for _, sub := range st.Subresources {
			if !rows[resource+"/"+sub.Name] {
				t.Errorf("subresource %s/%s has no row in the authorization table", resource, sub.Name)
			}
		}
	}
}
