// Package image is the node's OCI image store: it pulls images from registries, imports
// `docker save` and OCI-layout archives, and keeps their layers extracted once each, ready to
// be stacked by overlayfs as the lowerdirs of container rootfses.
//
// Everything lives under one root directory:
//
//	root/
//	  lock                    flock'ed while a Store is open
//	  images/index.json       reference -> Image record, replaced atomically
//	  blobs/sha256/<hex>      manifests, configs and layer blobs as fetched (content-addressed)
//	  layers/<hex>/           a layer's tree, extracted with overlay whiteouts; <hex> is the
//	                          layer's diffID (the digest of its uncompressed tar)
//	  tmp/                    scratch space: downloads, imports, layers being pruned
//
// Layers and blobs are shared by every image that lists them and are counted from the index
// on demand: nothing is deleted on Remove, and Prune deletes what no image and no Hold
// refers to. Layer directories are named by bare hex, without "sha256:", because overlayfs
// separates lowerdirs with colons.
//
// The package knows nothing of pods or the cloud API: the agent's container runtime calls
// Pull and LayerDirs, the CLI and API call List, Remove and Prune.
package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.uber.org/zap"
)

var (
	// ErrNotFound is wrapped by errors about images that are not in the store.
	ErrNotFound = errors.New("not found")
	// ErrInvalid is wrapped by errors about malformed references, options or archives.
	ErrInvalid = errors.New("invalid")
	// ErrLocked is returned by Open when another process has the store open.
	ErrLocked = errors.New("image store is locked")
)

// Credentials are a registry's username and password, sent with HTTP basic auth or traded
// for a bearer token, as the registry asks.
type Credentials struct {
	Username string
	Password string
}

// Options configure a Store. The zero value pulls anonymously over HTTPS, except from
// loopback and private-network registries, which go-containerregistry reaches over plain
// HTTP anyway.
type Options struct {
	// Logger receives the store's logs. If nil, nothing is logged.
	Logger *zap.Logger
	// InsecureRegistries are registries ("HOST:PORT", or "HOST" for port 443) that may be
	// reached over plain HTTP, or over HTTPS with an unverified certificate when Transport
	// is nil.
	InsecureRegistries []string
	// Mirrors maps a registry ("docker.io", "quay.io", "HOST:PORT") to a mirror URL such as
	// "http://127.0.0.1:5000"; pulls from that registry try the mirror first and fall back
	// to the registry itself. An http:// mirror is treated as insecure.
	Mirrors map[string]string
	// Auth maps a registry (as in Mirrors; mirrors are looked up by their own host) to the
	// credentials to use. Registries not listed are pulled from anonymously.
	Auth map[string]Credentials
	// Transport carries registry requests. If nil, go-containerregistry's default transport
	// (proxy from the environment, HTTP/2) is used.
	Transport http.RoundTripper
	// Platform selects the image from multi-platform indexes. If empty, linux and the
	// architecture cloudbox was built for.
	Platform *v1.Platform
	// LockWait is how long Open waits for another process to release the root (a
	// server killed a moment ago may still be exiting). If zero, Open fails at once.
	LockWait time.Duration
}

// Config is the part of an image's configuration that decides how its containers run.
type Config struct {
	Entrypoint   []string `json:"entrypoint,omitempty"`
	Cmd          []string `json:"cmd,omitempty"`
	Env          []string `json:"env,omitempty"`
	WorkingDir   string   `json:"workingDir,omitempty"`
	User         string   `json:"user,omitempty"`
	ExposedPorts []string `json:"exposedPorts,omitempty"` // "80/tcp", sorted
}

// Layer is one layer of an image.
type Layer struct {
	// DiffID is the digest of the uncompressed layer tar; it names the extracted directory.
	DiffID string `json:"diffID"`
	// Digest names the layer's blob as stored: compressed as the registry served it, or as
	// the imported archive held it.
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Size is the blob's size in bytes.
	Size int64 `json:"size"`
}

// Image is the store's record of one image reference. Records returned by the Store are
// copies: changing them changes nothing stored.
type Image struct {
	// Ref is the normalized reference ("docker.io/library/busybox:1.36"), or the manifest
	// digest for an imported image that came without a name.
	Ref string `json:"ref"`
	// Digest is the digest of the image manifest (for a multi-platform image, of the
	// platform's manifest, not of the index).
	Digest string `json:"digest"`
	// ID is the digest of the image configuration, what Docker shows as IMAGE ID.
	ID           string  `json:"id"`
	OS           string  `json:"os,omitempty"`
	Architecture string  `json:"architecture,omitempty"`
	Config       Config  `json:"config"`
	Layers       []Layer `json:"layers"` // lowest first
	// Size is the sum of the layer blobs' sizes, i.e. what a pull transfers.
	Size int64 `json:"size"`
	// Stored is when this reference was last pulled or imported here.
	Stored time.Time `json:"stored"`
}

// DiffIDs returns the image's layer diffIDs, lowest first.
func (img *Image) DiffIDs() []string {
	ids := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		ids[i] = l.DiffID
	}
	return ids
}

func (img *Image) clone() *Image {
	c := *img
	c.Layers = slices.Clone(img.Layers)
	c.Config.Entrypoint = slices.Clone(img.Config.Entrypoint)
	c.Config.Cmd = slices.Clone(img.Config.Cmd)
	c.Config.Env = slices.Clone(img.Config.Env)
	c.Config.ExposedPorts = slices.Clone(img.Config.ExposedPorts)
	return &c
}

// Store is a node's image store. It is safe for concurrent use; one process at a time may
// have a root open.
type Store struct {
	root string
	opts Options
	log  *zap.Logger
	lock *os.File

	mu     sync.Mutex
	images map[string]*Image // by Ref
	// held counts the users of layers ("layer:<diffID>") and blobs ("blob:<digest>") that the
	// index may not list yet or any more: pulls in progress and Holds. Prune spares them.
	held map[string]int
	// inflight has a channel per diffID being downloaded, closed when that ends, so that
	// concurrent pulls of images sharing a layer fetch it once.
	inflight map[string]chan struct{}
}

// Open opens the store under root, creating it if needed, and cleans up what an interrupted
// pull or prune left behind. Close it to release the root.
func Open(root string, opts Options) (*Store, error) {
	for _, d := range []string{"images", "blobs/sha256", "layers", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, err
		}
	}
	lock, err := os.OpenFile(filepath.Join(root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flockWithin(lock, opts.LockWait); err != nil {
		holder := lockHolder(lock)
		lock.Close()
		return nil, fmt.Errorf("%w: %s: is another cloudbox using this data dir?%s (%v)", ErrLocked, root, holder, err)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Store{
		root:     root,
		opts:     opts,
		log:      log.Named("image"),
		lock:     lock,
		held:     map[string]int{},
		inflight: map[string]chan struct{}{},
	}
	s.images, err = loadIndex(s.indexPath())
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.cleanScratch()
	return s, nil
}

// Close releases the store's root. The Store must not be used afterwards.
func (s *Store) Close() error {
	return s.lock.Close()
}

// cleanScratch removes leftovers of work that a crash interrupted: nothing in tmp/ or in
// layers/.tmp-* was ever referenced.
func (s *Store) cleanScratch() {
	for _, dir := range []string{filepath.Join(s.root, "tmp"), filepath.Join(s.root, "layers")} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if dir == filepath.Join(s.root, "layers") && !strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				s.log.Warn("remove leftover", zap.String("path", filepath.Join(dir, e.Name())), zap.Error(err))
			}
		}
	}
}

func (s *Store) indexPath() string { return filepath.Join(s.root, "images", "index.json") }

// hexOf returns the hex part of a sha256 digest, refusing anything else: digests come from
// manifests and archives and end up in file names.
func hexOf(digest string) (string, error) {
	h, err := v1.NewHash(digest)
	if err != nil || h.Algorithm != "sha256" {
		return "", fmt.Errorf("digest %q: not a sha256 digest: %w", digest, ErrInvalid)
	}
	return h.Hex, nil
}

func (s *Store) blobPath(hexDigest string) string {
	return filepath.Join(s.root, "blobs", "sha256", hexDigest)
}

func (s *Store) layerPath(hexDiffID string) string {
	return filepath.Join(s.root, "layers", hexDiffID)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Get returns the image stored under ref, which is normalized first, or under a manifest
// digest or image ID ("sha256:..."). The error wraps ErrNotFound when there is none.
func (s *Store) Get(ref string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getLocked(ref)
}

func (s *Store) getLocked(ref string) (*Image, error) {
	if strings.HasPrefix(ref, "sha256:") {
		var found *Image
		for _, img := range s.images {
			if (img.Digest == ref || img.ID == ref) && (found == nil || img.Ref < found.Ref) {
				found = img
			}
		}
		if found == nil {
			return nil, fmt.Errorf("image %s: %w", ref, ErrNotFound)
		}
		return found.clone(), nil
	}
	canon, err := Normalize(ref)
	if err != nil {
		return nil, err
	}
	img, ok := s.images[canon]
	if !ok {
		return nil, fmt.Errorf("image %s: %w", canon, ErrNotFound)
	}
	return img.clone(), nil
}

// List returns every stored image, ordered by reference.
func (s *Store) List() []*Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Image, 0, len(s.images))
	for _, img := range s.images {
		out = append(out, img.clone())
	}
	slices.SortFunc(out, func(a, b *Image) int { return strings.Compare(a.Ref, b.Ref) })
	return out
}

// Remove forgets the image stored under ref. Its layers and blobs stay until Prune finds no
// other image using them. The error wraps ErrNotFound when there is no such image.
func (s *Store) Remove(ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.getLocked(ref)
	if err != nil {
		return err
	}
	old := s.images[img.Ref]
	delete(s.images, img.Ref)
	if err := saveIndex(s.indexPath(), s.images); err != nil {
		s.images[img.Ref] = old
		return err
	}
	s.log.Info("image removed", zap.String("ref", img.Ref))
	return nil
}

// LayerDirs returns the extracted layer directories of img, lowest first (overlayfs wants
// its lowerdir option the other way round, topmost first). Each holds overlay whiteouts, so
// they are meant to be stacked, not used alone.
func (s *Store) LayerDirs(img *Image) []string {
	dirs := make([]string, 0, len(img.Layers))
	for _, l := range img.Layers {
		// Records are validated when stored, so the digest parses.
		h, _ := hexOf(l.DiffID)
		dirs = append(dirs, s.layerPath(h))
	}
	return dirs
}

// Hold keeps img's layers and blobs from being pruned until release is called, even if the
// image is removed meanwhile. The runtime holds the image of every container it runs,
// since Prune deleting a mounted lowerdir would pull the floor from under the container.
// release may be called more than once.
func (s *Store) Hold(img *Image) (release func()) {
	keys := imageKeys(img)
	s.mu.Lock()
	s.holdLocked(keys...)
	s.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { s.release(keys...) }) }
}

func imageKeys(img *Image) []string {
	keys := []string{"blob:" + img.Digest, "blob:" + img.ID}
	for _, l := range img.Layers {
		keys = append(keys, "layer:"+l.DiffID, "blob:"+l.Digest)
	}
	return keys
}

func (s *Store) holdLocked(keys ...string) {
	for _, k := range keys {
		s.held[k]++
	}
}

func (s *Store) release(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if s.held[k]--; s.held[k] <= 0 {
			delete(s.held, k)
		}
	}
}

// digestOf returns the sha256 digest of b in "sha256:<hex>" form.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
