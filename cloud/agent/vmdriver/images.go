package vmdriver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// Images are cached on the node by content (StateDir/images/<sha256>), fetched from
// the API server when a VM first needs them; every VM's disk is an overlay on the
// cached file, so many VMs share it.

// imagePath is where a file of the given digest is cached.
func (d *Driver) imagePath(sha string) string {
	return filepath.Join(d.cfg.StateDir, "images", sha)
}

// PullImage makes the files of the Image named ref present on the node. The policy
// does not matter: a file is known by its digest, so a cached one is always right.
func (d *Driver) PullImage(ctx context.Context, ref, policy string) (string, error) {
	img, err := d.image(ctx, ref)
	if err != nil {
		return "", err
	}
	for _, f := range img.Status.Files {
		if err := d.fetch(ctx, img.Name, f); err != nil {
			return "", err
		}
	}
	return "sha256:" + img.Status.Files[0].SHA256, nil
}

// image reads an Image that is ready to boot.
func (d *Driver) image(ctx context.Context, name string) (*api.Image, error) {
	img, err := client.Get[*api.Image](ctx, d.cfg.Client, "", name)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", name, err)
	}
	if img.Status.Phase != api.ImageActive || len(img.Status.Files) == 0 {
		return nil, fmt.Errorf("image %q is not active yet (phase %q)", name, img.Status.Phase)
	}
	return img, nil
}

// fetch downloads one file of an image unless it is cached, checking its digest.
func (d *Driver) fetch(ctx context.Context, image string, f api.ImageFile) error {
	dst := d.imagePath(f.SHA256)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	d.log.Info("downloading VM image", zap.String("image", image), zap.String("file", f.Role), zap.Int64("bytes", f.Size))
	body, err := d.cfg.Client.Stream(ctx, "GET", "/apis/compute/v1/images/"+url.PathEscape(image)+"/files/"+f.Role, nil, nil)
	if err != nil {
		return fmt.Errorf("downloading %s of image %q: %w", f.Role, image, err)
	}
	defer body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading %s of image %q: %w", f.Role, image, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("downloaded %s of image %q has digest %s (%d bytes), want %s", f.Role, image, got, n, f.SHA256)
	}
	return os.Rename(tmp.Name(), dst)
}
