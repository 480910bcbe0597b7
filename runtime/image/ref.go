package image

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is the name images from Docker Hub are stored under. go-containerregistry
// spells the registry "index.docker.io"; users, Kubernetes and containerd write "docker.io".
const dockerHub = "docker.io"

// Normalize returns the canonical form of an image reference, the key images are stored
// under: registry, full repository and a tag or digest, with Docker Hub's implicit parts
// filled in ("busybox" becomes "docker.io/library/busybox:latest"). References that differ
// only in spelling thus name one image.
func Normalize(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w: %w", ref, err, ErrInvalid)
	}
	return canonical(r), nil
}

func canonical(r name.Reference) string {
	repo := registryKey(r.Context().RegistryStr()) + "/" + r.Context().RepositoryStr()
	switch r := r.(type) {
	case name.Digest:
		return repo + "@" + r.DigestStr()
	case name.Tag:
		return repo + ":" + r.TagStr()
	}
	return repo + ":" + name.DefaultTag
}

// registryKey folds the names Docker Hub goes by into one, so that Options maps keyed by
// "docker.io" match however a reference spelled it.
func registryKey(host string) string {
	switch host {
	case name.DefaultRegistry, "registry-1.docker.io", dockerHub:
		return dockerHub
	}
	return host
}

// splitRef cuts a canonical reference into registry, repository and the ":tag" or "@digest"
// suffix.
func splitRef(canon string) (registry, repo, suffix string) {
	registry, rest, _ := strings.Cut(canon, "/")
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		return registry, rest[:i], rest[i:]
	}
	i := strings.LastIndex(rest, ":")
	return registry, rest[:i], rest[i:]
}

// mirrorRef rewrites canonical reference canon to be fetched from mirror, a URL such as
// "http://127.0.0.1:5000" or "https://harbor.local/dockerhub". A path in the URL prefixes the
// repository, which is how proxy caches like Harbor's expose an upstream registry. It reports
// whether the mirror speaks plain HTTP.
func mirrorRef(canon, mirror string) (string, bool, error) {
	if !strings.Contains(mirror, "://") {
		mirror = "https://" + mirror
	}
	u, err := url.Parse(mirror)
	if err != nil || u.Host == "" {
		return "", false, fmt.Errorf("mirror %q: not a URL: %w", mirror, ErrInvalid)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, fmt.Errorf("mirror %q: scheme must be http or https: %w", mirror, ErrInvalid)
	}
	_, repo, suffix := splitRef(canon)
	if p := strings.Trim(u.Path, "/"); p != "" {
		repo = p + "/" + repo
	}
	return u.Host + "/" + repo + suffix, u.Scheme == "http", nil
}
