package image

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// Prune deletes the layers and blobs that no stored image lists and nothing holds (see
// Hold; pulls in progress hold what they fetch), and returns the bytes of file content
// freed. Under the lock it only renames the victims into tmp/, so pulls and lookups wait
// for directory renames, not for deleting large trees.
func (s *Store) Prune() (int64, error) {
	trash, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "prune-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(trash)

	s.mu.Lock()
	inUse := map[string]bool{}
	for _, img := range s.images {
		for _, k := range imageKeys(img) {
			inUse[k] = true
		}
	}
	for k := range s.held {
		inUse[k] = true
	}
	var removed []string
	err = func() error {
		for _, d := range []struct{ dir, kind string }{
			{filepath.Join(s.root, "layers"), "layer:"},
			{filepath.Join(s.root, "blobs", "sha256"), "blob:"},
		} {
			ents, err := os.ReadDir(d.dir)
			if err != nil {
				return err
			}
			for _, e := range ents {
				// Dot names are scratch space of pulls in progress.
				if strings.HasPrefix(e.Name(), ".") || inUse[d.kind+"sha256:"+e.Name()] {
					continue
				}
				victim := d.kind + e.Name()
				if err := os.Rename(filepath.Join(d.dir, e.Name()), filepath.Join(trash, strings.TrimSuffix(d.kind, ":")+"-"+e.Name())); err != nil {
					return err
				}
				removed = append(removed, victim)
			}
		}
		return nil
	}()
	s.mu.Unlock()

	freed := diskUsage(trash)
	if len(removed) > 0 {
		s.log.Info("pruned", zap.Int("count", len(removed)), zap.Int64("freed", freed))
	}
	return freed, err
}

// diskUsage adds up the sizes of the regular files under dir, counting hard-linked files
// once.
func diskUsage(dir string) int64 {
	var total int64
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += fi.Size()
		return nil
	})
	return total
}
