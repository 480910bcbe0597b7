package apiserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/internal/atomicfile"
	"github.com/cloudbox/cloudbox/store"
)

// flavorsMarker records in the data dir that the default flavors were created once, so
// that a default flavor an administrator deleted stays deleted, as in Nova.
const flavorsMarker = "default-flavors-created"

// EnsureCompute prepares the compute API; the server calls it once at start, before
// it serves. It creates api.DefaultFlavors at the first start (without a data dir:
// every start, skipping those that exist) and removes VM image files no Image owns.
func (s *Server) EnsureCompute(ctx context.Context) error {
	if err := s.ensureDefaultFlavors(ctx); err != nil {
		return err
	}
	return s.sweepImageFiles(ctx)
}

func (s *Server) ensureDefaultFlavors(ctx context.Context) error {
	marker := ""
	if s.cfg.DataDir != "" {
		marker = filepath.Join(s.cfg.DataDir, flavorsMarker)
		if _, err := os.Stat(marker); err == nil {
			return nil
		}
	}
	k := api.KindOfType[*api.Flavor]()
	names := make([]string, 0, len(api.DefaultFlavors))
	for name := range api.DefaultFlavors {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := newObject[*api.Flavor]()
		f.Name, f.Spec = name, api.DefaultFlavors[name]
		if err := admit(f); err != nil {
			return fmt.Errorf("default flavor %s: %w", name, err)
		}
		if _, err := s.cfg.Store.Create(ctx, k, f); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("default flavor %s: %w", name, err)
		}
	}
	if marker != "" {
		return atomicfile.WriteFile(marker, []byte("m1 flavors created; delete this file to create the missing ones again\n"), 0o600)
	}
	return nil
}
