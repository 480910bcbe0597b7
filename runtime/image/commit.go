package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// pullJobs is how many layers of one image are fetched at once, as docker pull does.
const pullJobs = 3

// imageSource is an image about to be stored, from a registry or an archive.
type imageSource struct {
	// refs are the canonical references to store the image under; none stores it under
	// its manifest digest.
	refs []string
	// manifest is the raw manifest, or nil when the source has none (docker save) and one
	// is to be written for the layers as stored.
	manifest []byte
	config   []byte
	// layers are in manifest order; their diffIDs are taken from config.
	layers []layerSource
}

// commit stores src's layers and blobs, then records the image under each of its refs in
// one index write. Everything it stores stays held until the index lists it, so a
// concurrent Prune cannot take it away in between.
func (s *Store) commit(ctx context.Context, src imageSource, progress func(Progress)) ([]*Image, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(src.config))
	if err != nil {
		return nil, fmt.Errorf("image config: %w: %w", err, ErrInvalid)
	}
	if len(cfg.RootFS.DiffIDs) != len(src.layers) {
		return nil, fmt.Errorf("config lists %d layers, manifest %d: %w", len(cfg.RootFS.DiffIDs), len(src.layers), ErrInvalid)
	}
	for i := range src.layers {
		src.layers[i].diffID = cfg.RootFS.DiffIDs[i].String()
	}
	display := ""
	if len(src.refs) > 0 {
		display = src.refs[0]
	}

	held := make([][]string, len(src.layers)+1)
	defer func() { s.release(slices.Concat(held...)...) }()
	stored := make([]storedLayer, len(src.layers))
	var progressMu sync.Mutex
	err = parallel(ctx, len(src.layers), pullJobs, func(ctx context.Context, i int) error {
		l := src.layers[i]
		id := l.digest
		if id == "" {
			id = l.diffID
		}
		report := func(done, total int64, status string) {
			if progress == nil {
				return
			}
			progressMu.Lock()
			defer progressMu.Unlock()
			progress(Progress{Ref: display, Layer: id, Status: status, Done: done, Total: total})
		}
		var err error
		stored[i], err = s.ingestLayer(ctx, l, report, &held[i])
		return err
	})
	if err != nil {
		return nil, err
	}

	manifest := src.manifest
	if manifest == nil {
		if manifest, err = synthesizeManifest(src.config, stored); err != nil {
			return nil, err
		}
	}
	configDigest, manifestDigest := digestOf(src.config), digestOf(manifest)
	keys := []string{"blob:" + configDigest, "blob:" + manifestDigest}
	s.mu.Lock()
	s.holdLocked(keys...)
	s.mu.Unlock()
	held[len(src.layers)] = keys
	for _, b := range [][]byte{src.config, manifest} {
		if _, err := s.writeBlob(b); err != nil {
			return nil, err
		}
	}

	img := &Image{
		Digest:       manifestDigest,
		ID:           configDigest,
		OS:           cfg.OS,
		Architecture: cfg.Architecture,
		Config:       runConfig(cfg),
		Stored:       time.Now().UTC(),
	}
	for i, st := range stored {
		img.Layers = append(img.Layers, Layer{DiffID: src.layers[i].diffID, Digest: st.digest, MediaType: string(st.mediaType), Size: st.size})
		img.Size += st.size
	}
	refs := src.refs
	if len(refs) == 0 {
		refs = []string{manifestDigest}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := map[string]*Image{}
	var out []*Image
	for _, ref := range refs {
		rec := img.clone()
		rec.Ref = ref
		if prev, ok := s.images[ref]; ok {
			old[ref] = prev
		}
		s.images[ref] = rec
		out = append(out, rec.clone())
	}
	if err := saveIndex(s.indexPath(), s.images); err != nil {
		for _, ref := range refs {
			delete(s.images, ref)
			if prev, ok := old[ref]; ok {
				s.images[ref] = prev
			}
		}
		return nil, err
	}
	return out, nil
}

// runConfig picks from an image config what the runtime needs to start containers.
func runConfig(cfg *v1.ConfigFile) Config {
	c := Config{
		Entrypoint: cfg.Config.Entrypoint,
		Cmd:        cfg.Config.Cmd,
		Env:        cfg.Config.Env,
		WorkingDir: cfg.Config.WorkingDir,
		User:       cfg.Config.User,
	}
	for p := range cfg.Config.ExposedPorts {
		c.ExposedPorts = append(c.ExposedPorts, p)
	}
	slices.Sort(c.ExposedPorts)
	return c
}

// synthesizeManifest writes an OCI manifest for an image that arrived without one, so that
// every stored image can be served onward the same way.
func synthesizeManifest(config []byte, layers []storedLayer) ([]byte, error) {
	cd, err := v1.NewHash(digestOf(config))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(config)), Digest: cd},
	}
	for _, l := range layers {
		d, err := v1.NewHash(l.digest)
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.mediaType, Size: l.size, Digest: d})
	}
	return json.Marshal(m)
}
