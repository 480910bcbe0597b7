package image

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.uber.org/zap"
)

// PullPolicy says when Pull contacts the registry. The values are Kubernetes'
// imagePullPolicy, so a pod spec's field converts as is.
type PullPolicy string

const (
	// PullAlways resolves the reference at the registry every time; layers already stored
	// are not downloaded again.
	PullAlways PullPolicy = "Always"
	// PullIfNotPresent uses the stored image when there is one. The zero PullPolicy means
	// this too.
	PullIfNotPresent PullPolicy = "IfNotPresent"
	// PullNever uses the stored image and fails when there is none.
	PullNever PullPolicy = "Never"
)

// Progress reports how a pull of one layer is going, for progress bars.
type Progress struct {
	// Ref is the normalized reference being pulled.
	Ref string
	// Layer is the layer blob's digest.
	Layer string
	// Status is "downloading", "done", or "exists" for a layer already stored.
	Status string
	// Done counts the blob bytes received so far; Total is the blob's size from the
	// manifest (0 if unknown).
	Done, Total int64
}

// notPresentError is PullNever's failure; it wraps ErrNotFound while keeping the wording
// Kubernetes users know.
type notPresentError struct{ ref string }

func (e *notPresentError) Error() string {
	return fmt.Sprintf("image %q is not present and imagePullPolicy is Never", e.ref)
}

func (e *notPresentError) Unwrap() error { return ErrNotFound }

// Pull makes the image ref available in the store as policy says and returns it. When it
// contacts a registry it tries the configured mirror of ref's registry first and the
// registry itself if the mirror fails; from a multi-platform index it takes the manifest
// of the store's platform. progress, if not nil, is called with each layer's progress, one
// call at a time, from the pulling goroutines.
//
// The stored record keeps ref's own name even when a mirror served it.
func (s *Store) Pull(ctx context.Context, ref string, policy PullPolicy, progress func(Progress)) (*Image, error) {
	canon, err := Normalize(ref)
	if err != nil {
		return nil, err
	}
	switch policy {
	case PullIfNotPresent, "", PullNever:
		if img, err := s.Get(canon); err == nil {
			return img, nil
		}
		if policy == PullNever {
			return nil, &notPresentError{ref: ref}
		}
	case PullAlways:
	default:
		return nil, fmt.Errorf("pull policy %q: %w", policy, ErrInvalid)
	}
	sources, err := s.sources(canon)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, src := range sources {
		start := time.Now()
		img, err := s.pullFrom(ctx, canon, src, progress)
		if err == nil {
			s.log.Info("image pulled", zap.String("ref", canon), zap.String("from", src.ref.Context().RegistryStr()),
				zap.String("digest", img.Digest), zap.Duration("took", time.Since(start)))
			return img, nil
		}
		errs = append(errs, fmt.Errorf("from %s: %w", src.ref.Context().RegistryStr(), err))
		if ctx.Err() != nil {
			break
		}
		if src.mirror {
			s.log.Warn("mirror failed, trying the registry", zap.String("ref", canon), zap.String("mirror", src.ref.Context().RegistryStr()), zap.Error(err))
		}
	}
	return nil, fmt.Errorf("pull %s: %w", canon, errors.Join(errs...))
}

// pullSource is one place to pull a reference from.
type pullSource struct {
	ref      name.Reference
	mirror   bool
	insecure bool
}

// sources lists where to pull canon from, in order: its registry's mirror, then the
// registry.
func (s *Store) sources(canon string) ([]pullSource, error) {
	registry, _, _ := splitRef(canon)
	var out []pullSource
	for reg, mirror := range s.opts.Mirrors {
		if registryKey(reg) != registry {
			continue
		}
		mref, plainHTTP, err := mirrorRef(canon, mirror)
		if err != nil {
			return nil, err
		}
		src, err := s.source(mref, plainHTTP)
		if err != nil {
			return nil, fmt.Errorf("mirror %q: %w", mirror, err)
		}
		src.mirror = true
		out = append(out, src)
		break
	}
	src, err := s.source(canon, false)
	if err != nil {
		return nil, err
	}
	return append(out, src), nil
}

func (s *Store) source(ref string, insecure bool) (pullSource, error) {
	registry, _, _ := splitRef(ref)
	for _, h := range s.opts.InsecureRegistries {
		insecure = insecure || registryKey(h) == registry
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return pullSource{}, fmt.Errorf("image reference %q: %w: %w", ref, err, ErrInvalid)
	}
	return pullSource{ref: r, insecure: insecure}, nil
}

// insecureTransport is go-containerregistry's default transport without TLS verification,
// for insecure registries that do speak HTTPS, with a self-signed certificate, as
// Docker's --insecure-registry allows.
var insecureTransport = sync.OnceValue(func() http.RoundTripper {
	t, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		return remote.DefaultTransport
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.InsecureSkipVerify = true
	return t
})

func (s *Store) platform() v1.Platform {
	if s.opts.Platform != nil {
		return *s.opts.Platform
	}
	return v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
}

func (s *Store) remoteOptions(ctx context.Context, src pullSource) []remote.Option {
	auth := authn.Anonymous
	for reg, c := range s.opts.Auth {
		if registryKey(reg) == registryKey(src.ref.Context().RegistryStr()) {
			auth = &authn.Basic{Username: c.Username, Password: c.Password}
		}
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(auth),
		remote.WithPlatform(s.platform()),
		remote.WithUserAgent("cloudbox"),
	}
	switch {
	case s.opts.Transport != nil:
		opts = append(opts, remote.WithTransport(s.opts.Transport))
	case src.insecure:
		opts = append(opts, remote.WithTransport(insecureTransport()))
	}
	if src.mirror {
		// The registry itself is next in line: do not spend go-containerregistry's default
		// retries (seconds of backoff) on a mirror that is down.
		opts = append(opts, remote.WithRetryBackoff(remote.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Steps: 1}))
	}
	return opts
}

func (s *Store) pullFrom(ctx context.Context, canon string, src pullSource, progress func(Progress)) (*Image, error) {
	desc, err := remote.Get(src.ref, s.remoteOptions(ctx, src)...)
	if err != nil {
		return nil, err
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	want := s.platform()
	if (cfg.OS != "" && cfg.OS != want.OS) || (cfg.Architecture != "" && cfg.Architecture != want.Architecture) {
		return nil, fmt.Errorf("image is for %s/%s, this node runs %s/%s: %w", cfg.OS, cfg.Architecture, want.OS, want.Architecture, ErrInvalid)
	}
	isrc, err := imageFrom(img)
	if err != nil {
		return nil, err
	}
	isrc.refs = []string{canon}
	imgs, err := s.commit(ctx, isrc, progress)
	if err != nil {
		return nil, err
	}
	return imgs[0], nil
}
