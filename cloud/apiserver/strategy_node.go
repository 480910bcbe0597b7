package apiserver

import "net/http"

// Nodes are plain objects on the API, with two streams for cloudbox's own use
// (stream.go): the tunnel their agent dials in on, and their image store, reached
// through that tunnel.
func init() {
	registerStrategy("nodes", &strategy{
		Subresources: []subresource{
			{Name: "tunnel", OnlyMethods: true,
				Methods: map[string]subresourceHandler{http.MethodGet: (*Server).nodeTunnel}},
			{Name: "images", OnlyMethods: true, Methods: map[string]subresourceHandler{
				http.MethodGet: (*Server).nodeImages, http.MethodPost: (*Server).nodeImages, http.MethodDelete: (*Server).nodeImages}},
		},
	})
}
