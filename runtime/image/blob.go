package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/cloudbox/cloudbox/internal/atomicfile"
)

// layerSource is a layer blob to ingest, wherever it comes from.
type layerSource struct {
	// diffID is the digest of the uncompressed tar, from the image config.
	diffID string
	// digest is the blob's digest, or "" when the source does not say (docker save).
	digest string
	// size is the blob's size, or 0 when unknown; it only feeds progress reports.
	size int64
	// mediaType is the blob's type from the manifest, or "" to go by the content.
	mediaType types.MediaType
	open      func() (io.ReadCloser, error)
}

// storedLayer describes a layer blob once it is in the store.
type storedLayer struct {
	digest    string
	size      int64
	mediaType types.MediaType
}

// ingestLayer makes sure the layer src is extracted under layers/ and its blob is under
// blobs/, downloading it at most once even when concurrent pulls share it. The blob is read
// once and streamed through both digests and the extractor, so a layer is never held whole
// in memory or written compressed before being read back. The layer and blob stay held until
// the caller releases the keys it appends to *held.
func (s *Store) ingestLayer(ctx context.Context, src layerSource, report func(done, total int64, status string), held *[]string) (storedLayer, error) {
	diffHex, err := hexOf(src.diffID)
	if err != nil {
		return storedLayer{}, err
	}
	var ch chan struct{}
	for {
		s.mu.Lock()
		other, busy := s.inflight[src.diffID]
		if !busy {
			ch = make(chan struct{})
			s.inflight[src.diffID] = ch
			s.holdLocked("layer:" + src.diffID)
			*held = append(*held, "layer:"+src.diffID)
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		select {
		case <-other:
		case <-ctx.Done():
			return storedLayer{}, ctx.Err()
		}
	}
	defer func() {
		s.mu.Lock()
		delete(s.inflight, src.diffID)
		s.mu.Unlock()
		close(ch)
	}()

	haveLayer := exists(s.layerPath(diffHex))
	if haveLayer && src.digest != "" {
		if h, err := hexOf(src.digest); err == nil && exists(s.blobPath(h)) {
			s.mu.Lock()
			s.holdLocked("blob:" + src.digest)
			*held = append(*held, "blob:"+src.digest)
			s.mu.Unlock()
			fi, err := os.Stat(s.blobPath(h))
			if err != nil {
				return storedLayer{}, err
			}
			report(fi.Size(), fi.Size(), "exists")
			mt := src.mediaType
			if mt == "" {
				if mt, err = sniffMediaType(s.blobPath(h)); err != nil {
					return storedLayer{}, err
				}
			}
			return storedLayer{digest: src.digest, size: fi.Size(), mediaType: mt}, nil
		}
	}
	return s.fetchLayer(ctx, src, diffHex, !haveLayer, report, held)
}

// fetchLayer reads the blob of src into blobs/ and, when extract is set, applies it into
// layers/<diffHex> through a scratch directory renamed into place once both digests match.
func (s *Store) fetchLayer(ctx context.Context, src layerSource, diffHex string, extract bool, report func(done, total int64, status string), held *[]string) (storedLayer, error) {
	rc, err := src.open()
	if err != nil {
		return storedLayer{}, err
	}
	defer rc.Close()
	blob, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "blob-")
	if err != nil {
		return storedLayer{}, err
	}
	defer os.Remove(blob.Name())
	defer blob.Close()
	blobHash := sha256.New()
	counted := &progressReader{r: ctxReader{ctx, rc}, total: src.size, report: report}
	raw := io.TeeReader(counted, io.MultiWriter(blob, blobHash))
	br := bufio.NewReaderSize(raw, 64<<10)
	mediaType, tarStream, err := decompress(br)
	if err != nil {
		return storedLayer{}, err
	}
	defer tarStream.Close()
	diffHash := sha256.New()
	tr := io.TeeReader(tarStream, diffHash)

	var scratch string
	if extract {
		scratch, err = os.MkdirTemp(filepath.Join(s.root, "layers"), ".tmp-"+diffHex[:12]+"-")
		if err != nil {
			return storedLayer{}, err
		}
		defer os.RemoveAll(scratch) // a no-op once renamed into place
		// The layer root becomes "/" of containers whose upper layers do not set it; keep
		// MkdirTemp's 0700 and non-root processes could not look up a thing.
		if err := os.Chmod(scratch, 0o755); err != nil {
			return storedLayer{}, err
		}
		if _, err := ApplyLayer(scratch, tr, ApplyOptions{OverlayWhiteouts: true}); err != nil {
			return storedLayer{}, fmt.Errorf("layer %s: %w", src.diffID, err)
		}
	}
	// The tar reader stops at the end-of-archive marker and the decompressor at the end of
	// the compressed data; both digests cover everything, so read the rest.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return storedLayer{}, fmt.Errorf("layer %s: %w", src.diffID, err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return storedLayer{}, fmt.Errorf("layer %s: %w", src.diffID, err)
	}
	digest := hashDigest(blobHash)
	if src.digest != "" && digest != src.digest {
		return storedLayer{}, fmt.Errorf("layer blob %s: content has digest %s: %w", src.digest, digest, ErrInvalid)
	}
	if got := hashDigest(diffHash); got != src.diffID {
		return storedLayer{}, fmt.Errorf("layer %s: uncompressed content has digest %s: %w", src.diffID, got, ErrInvalid)
	}
	if err := blob.Sync(); err != nil {
		return storedLayer{}, err
	}
	size := counted.done
	s.mu.Lock()
	s.holdLocked("blob:" + digest)
	*held = append(*held, "blob:"+digest)
	s.mu.Unlock()
	if err := os.Rename(blob.Name(), s.blobPath(digest[len("sha256:"):])); err != nil {
		return storedLayer{}, err
	}
	if extract {
		// Extraction wrote through the page cache; flush it before the rename makes the
		// layer look complete, or a crash could leave a half-written lowerdir for good.
		if err := syncFS(scratch); err != nil {
			return storedLayer{}, err
		}
		if err := os.Rename(scratch, s.layerPath(diffHex)); err != nil && !exists(s.layerPath(diffHex)) {
			return storedLayer{}, err
		}
	}
	if err := atomicfile.SyncDir(filepath.Join(s.root, "blobs", "sha256")); err != nil {
		return storedLayer{}, err
	}
	report(size, size, "done")
	s.log.Debug("layer stored", zap.String("diffID", src.diffID), zap.String("digest", digest), zap.Int64("size", size), zap.Bool("extracted", extract))
	if src.mediaType != "" {
		mediaType = src.mediaType
	}
	return storedLayer{digest: digest, size: size, mediaType: mediaType}, nil
}

func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

func hashDigest(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress recognizes the layer's compression by its magic bytes rather than trusting a
// media type: docker save writes uncompressed tars, registries serve gzip or zstd, and
// archives are not always labelled truthfully.
func decompress(br *bufio.Reader) (types.MediaType, io.ReadCloser, error) {
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", nil, err
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", nil, err
		}
		return types.OCILayer, zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return "", nil, err
		}
		return types.OCILayerZStd, zr.IOReadCloser(), nil
	}
	return types.OCIUncompressedLayer, io.NopCloser(br), nil
}

// sniffMediaType reports the media type of a stored layer blob from its first bytes.
func sniffMediaType(p string) (types.MediaType, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	mt, rc, err := decompress(bufio.NewReader(f))
	if err != nil {
		return "", err
	}
	rc.Close()
	return mt, nil
}

// writeBlob stores a small blob (manifest, config) under its digest.
func (s *Store) writeBlob(data []byte) (string, error) {
	d := digestOf(data)
	p := s.blobPath(d[len("sha256:"):])
	if exists(p) {
		return d, nil
	}
	return d, atomicfile.WriteFile(p, data, 0o644)
}

// progressReader counts bytes read and reports them at most every 256 KiB, so a CLI bar
// moves smoothly without a callback per read.
type progressReader struct {
	r        io.Reader
	done     int64
	total    int64
	reported int64
	report   func(done, total int64, status string)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.done-p.reported >= 256<<10 {
		p.reported = p.done
		p.report(p.done, p.total, "downloading")
	}
	return n, err
}

// ctxReader fails reads once ctx is done, for sources (files) that do not watch it.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// parallel runs fn(ctx, i) for i in [0, n) with at most limit at once and returns the first
// error, cancelling the others' context.
func parallel(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
