package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// imageImportPath is apiserver.ImageImportPath; the client does not import the server.
const imageImportPath = "/apis/compute/v1/images/import"

// ImageFileUpload is one file of a VM image import.
type ImageFileUpload struct {
	// Role is api.ImageFileDisk, api.ImageFileKernel or api.ImageFileInitrd.
	Role string
	// Content is read once, to its end; the caller closes it if it needs closing.
	Content io.Reader
	// Size is Content's length if known, for progress; 0 if unknown.
	Size int64
}

// ImportProgress is called as bytes go out: the role being sent, the bytes of all
// files sent so far, and their total (0 if a size is unknown). It runs on the
// uploading goroutine and should return quickly.
type ImportProgress func(role string, sent, total int64)

// ImportImage creates a VM image with its files in one multipart request, streamed
// (nothing is held in memory), and returns the Image the server created (Active, with
// the files' sizes, formats and sha256). The server checks each file's content; an
// unfit file comes back as an Invalid *api.Status naming "files[ROLE]". progress may
// be nil.
func (c *Client) ImportImage(ctx context.Context, img *api.Image, files []ImageFileUpload, progress ImportProgress) (*api.Image, error) {
	meta, err := json.Marshal(img)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, f := range files {
		if f.Size <= 0 {
			total = 0
			break
		}
		total += f.Size
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeImportBody(mw, meta, files, total, progress))
	}()
	u := *c.base
	u.Path = c.base.Path + imageImportPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), pr)
	if err != nil {
		pr.Close()
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	resp, err := c.stream.Do(req)
	pr.Close() // the server may answer before reading everything (a refused name)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("import image %s: reading the answer: %w", img.Name, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, statusError(resp.StatusCode, data)
	}
	out, err := decode[*api.Image](data)
	if err != nil {
		return nil, fmt.Errorf("import image %s: decoding the answer: %w", img.Name, err)
	}
	return out, nil
}

func writeImportBody(mw *multipart.Writer, meta []byte, files []ImageFileUpload, total int64, progress ImportProgress) error {
	pw, err := mw.CreateFormField("image")
	if err != nil {
		return err
	}
	if _, err := pw.Write(meta); err != nil {
		return err
	}
	var sent int64
	for _, f := range files {
		w, err := mw.CreateFormFile(f.Role, f.Role)
		if err != nil {
			return err
		}
		var dst io.Writer = w
		if progress != nil {
			role := f.Role
			progress(role, sent, total)
			dst = writerFunc(func(p []byte) (int, error) {
				n, err := w.Write(p)
				sent += int64(n)
				progress(role, sent, total)
				return n, err
			})
		}
		if _, err := io.Copy(dst, f.Content); err != nil {
			return fmt.Errorf("sending %s: %w", f.Role, err)
		}
	}
	return mw.Close()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// DownloadImageFile streams one file of a VM image (role disk, kernel or initrd);
// the caller closes it. Its sha256 is the image's status.files[].sha256.
func (c *Client) DownloadImageFile(ctx context.Context, name, role string) (io.ReadCloser, error) {
	return c.Stream(ctx, http.MethodGet, "/apis/compute/v1/images/"+url.PathEscape(name)+"/files/"+url.PathEscape(role), nil, nil)
}
