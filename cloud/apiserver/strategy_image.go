package apiserver

import (
	"context"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// An Image's status describes files the server checked, so only an import sets it
// (images.go serves the import and the file downloads on paths of their own); an
// Image created through the REST tree is Pending. A deleted Image's files are removed.
func init() {
	registerStrategy("images", &strategy{
		PrepareForCreate: startStatus(api.ImageStatus{Phase: api.ImagePending}),
		AfterDelete: afterDelete(func(s *Server, _ context.Context, img *api.Image) {
			s.removeImageFiles(img)
		}),
	})
}
