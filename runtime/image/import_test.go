package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tarDir archives dir the way `tar -C dir -c .` would.
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dockerSave writes an archive shaped like `docker save` of Docker before 25: uncompressed
// layer tars in directories, config by image ID, manifest.json last.
func dockerSave(t *testing.T, img v1.Image, tags ...string) []byte {
	t.Helper()
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	id := digestString(t, img.ConfigName)[len("sha256:"):]
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var entries []tentry
	entry := dockerSaveEntry{Config: id + ".json", RepoTags: tags}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		dir := string(rune('a'+i)) + "layer"
		entries = append(entries, tentry{name: dir + "/", typ: tar.TypeDir}, tentry{name: dir + "/layer.tar", body: string(b)})
		entry.Layers = append(entry.Layers, dir+"/layer.tar")
	}
	manifest, err := json.Marshal([]dockerSaveEntry{entry})
	if err != nil {
		t.Fatal(err)
	}
	entries = append(entries, tentry{name: id + ".json", body: string(cfg)}, tentry{name: "manifest.json", body: string(manifest)})
	return mkTar(t, entries...)
}

func TestImport(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	base, upper := busyboxLayers(t)
	busybox := testImage(t, "amd64", base, upper)

	t.Run("docker save", func(t *testing.T) {
		s := openStore(t, Options{})
		imgs, err := s.Import(ctx, bytes.NewReader(dockerSave(t, busybox, "busybox:saved", "example.com/tools/busybox:1")))
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 2 || imgs[0].Ref != "docker.io/library/busybox:saved" || imgs[1].Ref != "example.com/tools/busybox:1" {
			t.Fatalf("imported %+v", imgs)
		}
		img := imgs[0]
		if img.ID != digestString(t, busybox.ConfigName) {
			t.Errorf("id %s", img.ID)
		}
		// docker save layers are uncompressed: their blobs are named by their diffIDs.
		for _, l := range img.Layers {
			if l.Digest != l.DiffID || l.MediaType != string(types.OCIUncompressedLayer) {
				t.Errorf("layer %+v", l)
			}
		}
		// The synthesized manifest is stored and names the stored blobs.
		h, _ := hexOf(img.Digest)
		mb, err := os.ReadFile(s.blobPath(h))
		if err != nil {
			t.Fatal(err)
		}
		m, err := v1.ParseManifest(bytes.NewReader(mb))
		if err != nil || m.Config.Digest.String() != img.ID || len(m.Layers) != 2 || m.Layers[1].Digest.String() != img.Layers[1].Digest {
			t.Errorf("manifest %s: %v", mb, err)
		}
		checkBusybox(t, s, withDigest(img, busybox), busybox)
	})

	t.Run("go-containerregistry tarball", func(t *testing.T) {
		s := openStore(t, Options{})
		var buf bytes.Buffer
		tag, _ := name.NewTag("example.com/busybox:tarball")
		if err := tarball.Write(tag, busybox, &buf); err != nil {
			t.Fatal(err)
		}
		imgs, err := s.Import(ctx, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 1 || imgs[0].Ref != "example.com/busybox:tarball" {
			t.Fatalf("imported %+v", imgs)
		}
		// Its layers are gzipped, as in the registry: the blobs match the image's.
		for i, l := range imgs[0].Layers {
			if want := digestString(t, []v1.Layer{base, upper}[i].Digest); l.Digest != want {
				t.Errorf("layer %d blob %s, want %s", i, l.Digest, want)
			}
		}
		checkBusybox(t, s, withDigest(imgs[0], busybox), busybox)
	})

	t.Run("OCI layout", func(t *testing.T) {
		s := openStore(t, Options{})
		dir := t.TempDir()
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(busybox, layout.WithAnnotations(map[string]string{annotationRefName: "example.com/busybox:oci"})); err != nil {
			t.Fatal(err)
		}
		other := testImage(t, "amd64", base)
		if err := p.AppendImage(other, layout.WithAnnotations(map[string]string{annotationRefName: "1.0"})); err != nil {
			t.Fatal(err)
		}
		imgs, err := s.Import(ctx, bytes.NewReader(tarDir(t, dir)))
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 2 {
			t.Fatalf("imported %d images", len(imgs))
		}
		if imgs[0].Ref != "example.com/busybox:oci" {
			t.Errorf("ref %q", imgs[0].Ref)
		}
		// A bare tag names no repository: the image is kept under its digest.
		if d := digestString(t, other.Digest); imgs[1].Ref != d || imgs[1].Digest != d {
			t.Errorf("unnamed image stored as %q", imgs[1].Ref)
		}
		if got, err := s.Get(imgs[1].Digest); err != nil || got.Ref != imgs[1].Digest {
			t.Errorf("Get by digest: %v", err)
		}
		checkBusybox(t, s, imgs[0], busybox)
	})

	t.Run("layers are stored once", func(t *testing.T) {
		s := openStore(t, Options{})
		if _, err := s.Import(ctx, bytes.NewReader(dockerSave(t, busybox, "a:1"))); err != nil {
			t.Fatal(err)
		}
		a, _ := s.Get("a:1")
		before := lstat(t, s.LayerDirs(a)[0]).Ino
		if _, err := s.Import(ctx, bytes.NewReader(dockerSave(t, busybox, "b:1"))); err != nil {
			t.Fatal(err)
		}
		b, _ := s.Get("b:1")
		if !slices.Equal(s.LayerDirs(a), s.LayerDirs(b)) || lstat(t, s.LayerDirs(b)[0]).Ino != before {
			t.Error("second import extracted the layer again")
		}
	})

	t.Run("bad archives", func(t *testing.T) {
		s := openStore(t, Options{})
		if _, err := s.Import(ctx, bytes.NewReader(mkTar(t, tentry{name: "README", body: "hi"}))); !errors.Is(err, ErrInvalid) {
			t.Errorf("archive without an image: %v", err)
		}
		if _, err := s.Import(ctx, bytes.NewReader(mkTar(t, tentry{name: "../manifest.json", body: "[]"}))); err == nil {
			t.Error("archive with ../ imported")
		}
		evil := mkTar(t, tentry{name: "manifest.json", body: `[{"Config":"../../../../etc/hostname","Layers":[]}]`})
		if _, err := s.Import(ctx, bytes.NewReader(evil)); err == nil {
			t.Error("manifest.json naming a file outside the archive was followed")
		}
		if len(s.List()) != 0 {
			t.Errorf("bad archives left images: %v", s.List())
		}
		if ents, _ := os.ReadDir(filepath.Join(s.root, "tmp")); len(ents) != 0 {
			t.Errorf("tmp not cleaned: %v", ents)
		}
	})
}

// withDigest returns img with the digest of want's registry manifest, for checkBusybox: an
// import without a manifest gets a synthesized one.
func withDigest(img *Image, want v1.Image) *Image {
	c := img.clone()
	d, _ := want.Digest()
	c.Digest = d.String()
	return c
}
