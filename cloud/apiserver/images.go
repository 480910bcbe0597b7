package apiserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

// VM image files live under DATA_DIR/vm-images/<image uid>/<role> (not DATA_DIR/images,
// which is the container image store of the all-in-one node's agent). An import is
// staged in DATA_DIR/vm-images/.staging-* on the same file system and renamed into
// place, so a reader never sees half an image.
const (
	vmImagesDir   = "vm-images"
	stagingPrefix = ".staging-"

	// ImageImportPath is where `cloudbox image import` posts an image and its files.
	ImageImportPath = "/apis/compute/v1/images/import"
	// DefaultMaxImageBytes bounds an import's body when Config.MaxImageBytes is zero.
	DefaultMaxImageBytes = 64 << 30
	// imagePartName is the multipart part holding the Image object.
	imagePartName = "image"
)

func (s *Server) imagesRoot() string { return filepath.Join(s.cfg.DataDir, vmImagesDir) }

func (s *Server) imageDir(uid string) string { return filepath.Join(s.imagesRoot(), uid) }

// serveImageImport creates an Image and its files in one request: a multipart/form-data
// body whose part "image" holds the Image object (JSON or YAML) and whose parts disk,
// kernel and initrd hold the files. Files are streamed to disk with their sha256 and
// size computed on the way and their content checked; the Image is created Active
// only when everything is in place, and nothing is left behind on failure.
func (s *Server) serveImageImport(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	k := api.KindOfType[*api.Image]()
	name, err := s.importImage(rw, r, k)
	if err != nil {
		writeError(rw, err, k, name)
	}
	s.metrics.observe("create", "images/import", rw.code, time.Since(start))
}

func (s *Server) importImage(w http.ResponseWriter, r *http.Request, k *api.KindInfo) (string, error) {
	if !userOf(r).Admin {
		return "", newStatus(http.StatusForbidden, "Forbidden", userOf(r).Name+" may not import images")
	}
	if s.cfg.DataDir == "" {
		return "", newStatus(http.StatusServiceUnavailable, "ServiceUnavailable", "this API server keeps no image files (no data dir)")
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		return "", newStatus(http.StatusUnsupportedMediaType, "UnsupportedMediaType",
			"an image import is multipart/form-data: a part \"image\" with the Image object, then parts disk, kernel or initrd with the files")
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxImageBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return "", badRequest("reading the multipart body: " + err.Error())
	}
	if err := os.MkdirAll(s.imagesRoot(), 0o700); err != nil {
		return "", err
	}
	staging, err := os.MkdirTemp(s.imagesRoot(), stagingPrefix)
	if err != nil {
		return "", err
	}
	committed := false
	defer func() {
		if !committed {
			_ = os.RemoveAll(staging)
		}
	}()

	var img *api.Image
	files := map[string]api.ImageFile{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return imageName(img), bodyError(err, s.cfg.MaxImageBytes)
		}
		role := part.FormName()
		switch role {
		case imagePartName:
			if img != nil {
				return imageName(img), &api.FieldError{Field: imagePartName, Reason: "sent twice"}
			}
			if img, err = s.readImagePart(r.Context(), part, k); err != nil {
				return imageName(img), err
			}
		case api.ImageFileDisk, api.ImageFileKernel, api.ImageFileInitrd:
			if _, dup := files[role]; dup {
				return imageName(img), &api.FieldError{Field: fileField(role), Reason: "sent twice"}
			}
			f, err := receiveFile(filepath.Join(staging, role), part)
			if err != nil {
				return imageName(img), bodyError(err, s.cfg.MaxImageBytes)
			}
			f.Role = role
			files[role] = f
		default:
			return imageName(img), &api.FieldError{Field: role, Reason: fmt.Sprintf("unknown part %q: want %s, %s, %s or %s",
				role, imagePartName, api.ImageFileDisk, api.ImageFileKernel, api.ImageFileInitrd)}
		}
		part.Close()
	}
	if img == nil {
		return "", &api.FieldError{Field: imagePartName, Reason: "required: a part with the Image object (metadata.name, spec.type)"}
	}
	if err := checkImageFiles(img, staging, files, s.cfg.CheckImageFile); err != nil {
		return img.Name, err
	}
	img.Status = api.ImageStatus{Phase: api.ImageActive}
	for _, role := range []string{api.ImageFileDisk, api.ImageFileKernel, api.ImageFileInitrd} {
		if f, ok := files[role]; ok {
			img.Status.Files = append(img.Status.Files, f)
			img.Status.Size += f.Size
		}
	}
	if err := admit(img); err != nil {
		return img.Name, err
	}
	created, err := s.cfg.Store.Create(r.Context(), k, img)
	if err != nil {
		return img.Name, err
	}
	uid := created.GetObjectMeta().UID
	if err := os.Rename(staging, s.imageDir(uid)); err != nil {
		// The object may not outlive its files: take it back.
		_, _ = s.cfg.Store.Delete(context.WithoutCancel(r.Context()), k, "", img.Name, created.GetObjectMeta().ResourceVersion)
		return img.Name, fmt.Errorf("putting the files of image %s in place: %w", img.Name, err)
	}
	committed = true
	s.log.Info("image imported", zap.String("image", img.Name), zap.String("uid", uid), zap.Int64("bytes", img.Status.Size))
	writeJSON(w, http.StatusCreated, created)
	return img.Name, nil
}

func imageName(img *api.Image) string {
	if img == nil {
		return ""
	}
	return img.Name
}

func fileField(role string) string { return "files[" + role + "]" }

// readImagePart decodes the Image object and refuses a taken name before any file is
// streamed, so that a duplicate does not cost a 10 GiB upload first.
func (s *Server) readImagePart(ctx context.Context, part io.Reader, k *api.KindInfo) (*api.Image, error) {
	body, err := io.ReadAll(io.LimitReader(part, s.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, badRequest("reading part image: " + err.Error())
	}
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		return nil, &api.FieldError{Field: imagePartName, Reason: fmt.Sprintf("larger than %d bytes", s.cfg.MaxBodyBytes)}
	}
	img, err := decodeAs[*api.Image](body)
	if err != nil {
		if errors.Is(err, api.ErrInvalid) {
			return nil, err
		}
		return nil, &api.FieldError{Field: imagePartName, Reason: err.Error()}
	}
	m := &img.ObjectMeta
	if m.Namespace != "" {
		return img, &api.FieldError{Field: "metadata.namespace", Reason: "images are not namespaced: leave it empty"}
	}
	// Fields the server owns are cleared, as on create.
	m.UID, m.ResourceVersion, m.CreationTimestamp = "", "", nil
	m.DeletionTimestamp, m.DeletionGracePeriodSeconds, m.Generation = nil, nil, 0
	m.GenerateName = ""
	if err := admit(img); err != nil {
		return img, err
	}
	if _, err := s.cfg.Store.Get(ctx, k, "", m.Name); err == nil {
		return img, fmt.Errorf("images %s: %w", m.Name, store.ErrAlreadyExists)
	} else if !errors.Is(err, store.ErrNotFound) {
		return img, err
	}
	return img, nil
}

// receiveFile streams one part to path, hashing and counting as it goes.
func receiveFile(path string, part io.Reader) (api.ImageFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return api.ImageFile{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), part)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return api.ImageFile{}, err
	}
	return api.ImageFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// bodyError turns a failed read of the body into the answer: too large, or cut off.
func bodyError(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return newStatus(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("the import is larger than %d bytes", limit))
	}
	return badRequest("reading the upload: " + err.Error())
}

// checkImageFiles checks that the files fit the image's type and that each is what its
// role says, by reading it (a name or a client's word is never trusted).
func checkImageFiles(img *api.Image, dir string, files map[string]api.ImageFile, check func(role, path string) (string, error)) error {
	var errs api.FieldErrors
	want := map[string]bool{}
	switch img.Spec.Type {
	case api.ImageTypeDisk:
		want[api.ImageFileDisk] = true
		if _, ok := files[api.ImageFileDisk]; !ok {
			errs = append(errs, &api.FieldError{Field: fileField(api.ImageFileDisk), Reason: "required: a disk image needs its disk file"})
		}
	case api.ImageTypeKernel:
		want[api.ImageFileKernel], want[api.ImageFileInitrd] = true, true
		if _, ok := files[api.ImageFileKernel]; !ok {
			errs = append(errs, &api.FieldError{Field: fileField(api.ImageFileKernel), Reason: "required: a kernel image needs its kernel file"})
		}
	}
	for _, role := range []string{api.ImageFileDisk, api.ImageFileKernel, api.ImageFileInitrd} {
		f, ok := files[role]
		if !ok {
			continue
		}
		if !want[role] {
			errs = append(errs, &api.FieldError{Field: fileField(role), Reason: fmt.Sprintf("not part of a %s image", img.Spec.Type)})
			continue
		}
		format, err := check(role, filepath.Join(dir, role))
		if err != nil {
			errs = append(errs, &api.FieldError{Field: fileField(role), Reason: err.Error()})
			continue
		}
		f.Format = format
		files[role] = f
	}
	return errs.OrNil()
}

// serveImageFile streams one file of an image to an administrator or a node (nodes
// fetch the images their VMs boot from). Range requests are served, so a node can
// resume a large download.
func (s *Server) serveImageFile(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	k := api.KindOfType[*api.Image]()
	name, role := r.PathValue("name"), r.PathValue("role")
	if err := s.sendImageFile(rw, r, k, name, role); err != nil {
		writeError(rw, err, k, name)
	}
	s.metrics.observe("get", "images/files", rw.code, time.Since(start))
}

func (s *Server) sendImageFile(w http.ResponseWriter, r *http.Request, k *api.KindInfo, name, role string) error {
	if !userOf(r).allowed("get", k.Resource, "") {
		return newStatus(http.StatusForbidden, "Forbidden", userOf(r).Name+" may not read images")
	}
	img, err := storeGet[*api.Image](r.Context(), s.cfg.Store, "", name)
	if err != nil {
		return err
	}
	var file *api.ImageFile
	for i := range img.Status.Files {
		if img.Status.Files[i].Role == role {
			file = &img.Status.Files[i]
		}
	}
	if file == nil || s.cfg.DataDir == "" {
		return notFound(fmt.Sprintf("image %s has no %s file", name, role))
	}
	f, err := os.Open(filepath.Join(s.imageDir(img.UID), role))
	if errors.Is(err, os.ErrNotExist) {
		return notFound(fmt.Sprintf("the %s file of image %s is not on this server", role, name))
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"sha256:`+file.SHA256+`"`)
	w.Header().Set("X-Content-Sha256", file.SHA256)
	http.ServeContent(w, r, "", st.ModTime(), f)
	return nil
}

// removeImageFiles deletes the files of an image that was deleted.
func (s *Server) removeImageFiles(img *api.Image) {
	if s.cfg.DataDir == "" || img.UID == "" {
		return
	}
	if err := os.RemoveAll(s.imageDir(img.UID)); err != nil {
		s.log.Warn("removing the files of a deleted image", zap.String("image", img.Name), zap.Error(err))
	}
}

// sweepImageFiles removes what no Image owns: staging dirs of imports a crash cut
// short, and the files of images deleted while the files could not be removed. It
// runs at start, before the server serves, when no import can be under way.
func (s *Server) sweepImageFiles(ctx context.Context) error {
	if s.cfg.DataDir == "" {
		return nil
	}
	entries, err := os.ReadDir(s.imagesRoot())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	images, err := storeList[*api.Image](ctx, s.cfg.Store)
	if err != nil {
		return err
	}
	owned := map[string]bool{}
	for _, img := range images {
		owned[img.UID] = true
	}
	for _, e := range entries {
		if owned[e.Name()] {
			continue
		}
		s.log.Info("removing VM image files no image owns", zap.String("dir", e.Name()))
		_ = os.RemoveAll(filepath.Join(s.imagesRoot(), e.Name()))
	}
	return nil
}
