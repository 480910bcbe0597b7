package apiserver

import "net/http"

// Instances (VMs) serve their serial console log from the node that last ran them,
// also once they are stopped (stream.go), as Nova's console log outlives a stop.
func init() {
	registerStrategy("instances", &strategy{
		Subresources: []subresource{
			{Name: "log", Verbs: []string{"get"}, OnlyMethods: true,
				Methods: map[string]subresourceHandler{http.MethodGet: (*Server).instanceLog}},
		},
	})
}
