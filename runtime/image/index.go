package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cloudbox/cloudbox/internal/atomicfile"
)

// indexVersion is bumped when the index's shape changes incompatibly; loadIndex refuses
// versions it does not know rather than misreading them.
const indexVersion = 1

// indexFile is images/index.json.
type indexFile struct {
	Version int      `json:"version"`
	Images  []*Image `json:"images"`
}

// loadIndex reads the index; a missing file is an empty store.
func loadIndex(p string) (map[string]*Image, error) {
	images := map[string]*Image{}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return images, nil
	}
	if err != nil {
		return nil, err
	}
	var f indexFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("image index %s: %w", p, err)
	}
	if f.Version != indexVersion {
		return nil, fmt.Errorf("image index %s: version %d, this cloudbox reads %d: %w", p, f.Version, indexVersion, ErrInvalid)
	}
	for _, img := range f.Images {
		if err := validRecord(img); err != nil {
			return nil, fmt.Errorf("image index %s: %w", p, err)
		}
		images[img.Ref] = img
	}
	return images, nil
}

// validRecord checks the digests a record turns into paths.
func validRecord(img *Image) error {
	if img.Ref == "" {
		return fmt.Errorf("image without a reference: %w", ErrInvalid)
	}
	for _, d := range append([]string{img.Digest, img.ID}, slices.Concat(img.DiffIDs(), layerDigests(img))...) {
		if _, err := hexOf(d); err != nil {
			return fmt.Errorf("image %s: %w", img.Ref, err)
		}
	}
	return nil
}

func layerDigests(img *Image) []string {
	ds := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		ds[i] = l.Digest
	}
	return ds
}

// saveIndex replaces the index atomically, so a crash leaves the old or the new one.
func saveIndex(p string, images map[string]*Image) error {
	f := indexFile{Version: indexVersion, Images: make([]*Image, 0, len(images))}
	for _, img := range images {
		f.Images = append(f.Images, img)
	}
	slices.SortFunc(f.Images, func(a, b *Image) int { return strings.Compare(a.Ref, b.Ref) })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, b, 0o644)
}
