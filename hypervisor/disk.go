package hypervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// QEMUImg is the qemu-img binary the disk functions run.
const QEMUImg = "qemu-img"

// CreateOverlay creates a qcow2 overlay backed by base, so that many VMs share one image
// and each writes only its own changes. The backing path is made absolute because qemu-img
// resolves a relative one against the overlay's directory. The overlay grows to sizeBytes
// if that is larger than base; otherwise it has base's size. An empty baseFormat is
// detected from base's content (DetectDiskFormat).
func CreateOverlay(ctx context.Context, base string, baseFormat Format, overlay string, sizeBytes int64) error {
	abs, err := filepath.Abs(base)
	if err != nil {
		return err
	}
	if baseFormat == "" {
		if baseFormat, err = DetectDiskFormat(abs); err != nil {
			return err
		}
	}
	args := []string{"create", "-q", "-f", string(FormatQCOW2), "-b", abs, "-F", string(baseFormat), overlay}
	if sizeBytes > 0 {
		baseSize, err := VirtualSize(ctx, abs)
		if err != nil {
			return err
		}
		if sizeBytes > baseSize {
			args = append(args, strconv.FormatInt(sizeBytes, 10))
		}
	}
	_, err = runQEMUImg(ctx, args...)
	return err
}

// CreateBlank creates an empty qcow2 disk of sizeBytes, for volumes.
func CreateBlank(ctx context.Context, path string, sizeBytes int64) error {
	if sizeBytes <= 0 {
		return fmt.Errorf("%s: disk size %d must be positive", path, sizeBytes)
	}
	_, err := runQEMUImg(ctx, "create", "-q", "-f", string(FormatQCOW2), path, strconv.FormatInt(sizeBytes, 10))
	return err
}

// VirtualSize returns the size of the disk the guest sees, in bytes.
func VirtualSize(ctx context.Context, path string) (int64, error) {
	out, err := runQEMUImg(ctx, "info", "--output=json", path)
	if err != nil {
		return 0, err
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	return info.VirtualSize, nil
}

// runQEMUImg runs qemu-img and puts its stderr in the error, where the reason is.
func runQEMUImg(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, QEMUImg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return nil, fmt.Errorf("qemu-img %s: %w", args[0], err)
		}
		return nil, fmt.Errorf("qemu-img %s: %w: %s", args[0], err, msg)
	}
	return out, nil
}
