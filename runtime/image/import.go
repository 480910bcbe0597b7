package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"go.uber.org/zap"
)

const (
	// annotationRefName names an image in an OCI layout's index.json.
	annotationRefName = "org.opencontainers.image.ref.name"
	// annotationContainerdName is where containerd and Docker 25+ put the full reference,
	// leaving ref.name with only the tag.
	annotationContainerdName = "io.containerd.image.name"
)

// Import stores the images of an archive read from r: a `docker save` tarball (named by
// its manifest.json's RepoTags) or an OCI-layout tarball (named by each manifest's
// org.opencontainers.image.ref.name or io.containerd.image.name annotation). Images without
// a name are stored under their manifest digest. An archive holding both, as Docker 25+
// writes, is read through manifest.json.
func (s *Store) Import(ctx context.Context, r io.Reader) ([]*Image, error) {
	dir, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// Neither format promises an entry order (docker save writes manifest.json last), so
	// the archive is unpacked first, by the same guarded extractor as layers: it is just as
	// untrusted.
	if _, err := ApplyLayer(dir, ctxReader{ctx, r}, ApplyOptions{}); err != nil {
		return nil, fmt.Errorf("unpack archive: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var imgs []*Image
	switch {
	case fileExists(root, "manifest.json"):
		imgs, err = s.importDockerSave(ctx, root)
	case fileExists(root, "oci-layout") && fileExists(root, "index.json"):
		// go-containerregistry opens layout blobs by path, following symlinks; a layout
		// has no business holding any, and one could lead the reads out of dir.
		if err := noSymlinks(dir); err != nil {
			return nil, err
		}
		imgs, err = s.importLayout(ctx, dir)
	default:
		return nil, fmt.Errorf("archive has neither manifest.json (docker save) nor oci-layout and index.json (OCI layout): %w", ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	for _, img := range imgs {
		s.log.Info("image imported", zap.String("ref", img.Ref), zap.String("digest", img.Digest))
	}
	return imgs, nil
}

func noSymlinks(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			rel, _ := filepath.Rel(dir, p)
			return fmt.Errorf("OCI layout archive holds symlink %q: %w", rel, ErrInvalid)
		}
		return nil
	})
}

func fileExists(root *os.Root, p string) bool {
	fi, err := root.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// dockerSaveEntry is one image of a docker save manifest.json.
type dockerSaveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// importDockerSave reads the archive unpacked under root. Its file names come from
// manifest.json and are opened through root, so they cannot reach outside it.
func (s *Store) importDockerSave(ctx context.Context, root *os.Root) ([]*Image, error) {
	b, err := root.ReadFile("manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []dockerSaveEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("manifest.json: %w: %w", err, ErrInvalid)
	}
	var out []*Image
	for _, e := range entries {
		config, err := root.ReadFile(e.Config)
		if err != nil {
			return out, fmt.Errorf("config %q: %w", e.Config, err)
		}
		src := imageSource{config: config}
		for _, t := range e.RepoTags {
			canon, err := Normalize(t)
			if err != nil {
				return out, err
			}
			src.refs = append(src.refs, canon)
		}
		for _, p := range e.Layers {
			src.layers = append(src.layers, layerSource{open: func() (io.ReadCloser, error) { return root.Open(p) }})
		}
		imgs, err := s.commit(ctx, src, nil)
		if err != nil {
			return out, err
		}
		out = append(out, imgs...)
	}
	return out, nil
}

// importLayout reads the OCI layout unpacked in dir, taking from nested indexes the
// manifest for the store's platform.
func (s *Store) importLayout(ctx context.Context, dir string) ([]*Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, desc := range im.Manifests {
		img, err := s.layoutImage(idx, desc)
		if err != nil {
			return out, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		src, err := imageFrom(img)
		if err != nil {
			return out, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		if ref := layoutRef(desc.Annotations); ref != "" {
			canon, err := Normalize(ref)
			if err != nil {
				return out, err
			}
			src.refs = []string{canon}
		}
		imgs, err := s.commit(ctx, src, nil)
		if err != nil {
			return out, err
		}
		out = append(out, imgs...)
	}
	return out, nil
}

// layoutRef returns the full reference an index entry is annotated with, or "". A bare
// ref.name ("1.36", as the OCI spec has it) names no repository and is not used.
func layoutRef(ann map[string]string) string {
	if r := ann[annotationContainerdName]; r != "" {
		return r
	}
	r := ann[annotationRefName]
	if strings.ContainsAny(r, "/:@") {
		return r
	}
	return ""
}

func (s *Store) layoutImage(idx v1.ImageIndex, desc v1.Descriptor) (v1.Image, error) {
	if desc.MediaType.IsImage() {
		return idx.Image(desc.Digest)
	}
	if !desc.MediaType.IsIndex() {
		return nil, fmt.Errorf("unsupported media type %s: %w", desc.MediaType, ErrInvalid)
	}
	child, err := idx.ImageIndex(desc.Digest)
	if err != nil {
		return nil, err
	}
	cm, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	want := s.platform()
	for _, d := range cm.Manifests {
		if d.MediaType.IsImage() && (d.Platform == nil || d.Platform.Satisfies(want)) {
			return child.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for %s/%s in the index: %w", want.OS, want.Architecture, ErrNotFound)
}

// imageFrom turns an image of go-containerregistry into what commit stores.
func imageFrom(img v1.Image) (imageSource, error) {
	manifest, err := img.RawManifest()
	if err != nil {
		return imageSource{}, err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return imageSource{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return imageSource{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return imageSource{}, err
	}
	// Sources do not all check the config against the manifest (layouts read it by path);
	// layers are checked as they are stored.
	if d := digestOf(config); d != m.Config.Digest.String() {
		return imageSource{}, fmt.Errorf("config has digest %s, manifest says %s: %w", d, m.Config.Digest, ErrInvalid)
	}
	if len(layers) != len(m.Layers) {
		return imageSource{}, fmt.Errorf("manifest lists %d layers, image has %d: %w", len(m.Layers), len(layers), ErrInvalid)
	}
	src := imageSource{manifest: manifest, config: config}
	for i, l := range layers {
		src.layers = append(src.layers, layerSource{
			digest:    m.Layers[i].Digest.String(),
			size:      m.Layers[i].Size,
			mediaType: m.Layers[i].MediaType,
			open:      func() (io.ReadCloser, error) { return l.Compressed() },
		})
	}
	return src, nil
}
