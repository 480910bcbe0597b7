package hypervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// Hot-plugged disks are named from their id: the QEMU device "cbdisk-<id>" on block node
// "cbnode-<id>", and the id is the virtio serial, so the guest sees
// /dev/disk/by-id/virtio-<id>. The prefixes let Disks tell them from the boot disk and
// the seed after a re-attach, with no state kept outside QEMU.
const (
	diskDevPrefix  = "cbdisk-"
	diskNodePrefix = "cbnode-"
)

// detachTimeout bounds the wait for the guest to release an unplugged disk.
var detachTimeout = 30 * time.Second

// ErrNoDisk is returned by DetachDisk for an id that is not plugged.
var ErrNoDisk = errors.New("hypervisor: no such disk")

// A virtio-blk serial holds 20 bytes; node names 31.
var diskIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$`)

func checkDiskID(id string) error {
	if !diskIDRE.MatchString(id) {
		return fmt.Errorf("%w: disk id %q must be 1-20 letters, digits, '_' or '-'", ErrInvalidConfig, id)
	}
	return nil
}

// AttachDisk hot-plugs the image at path (format "qcow2" or "raw"; if empty, qcow2) as a
// virtio-blk disk named id. The guest sees a new /dev/vdX.
func (v *VM) AttachDisk(ctx context.Context, id, path, format string) error {
	if err := checkDiskID(id); err != nil {
		return err
	}
	if format == "" {
		format = "qcow2"
	}
	if format != "qcow2" && format != "raw" {
		return fmt.Errorf("%w: disk %s: format %q is not qcow2 or raw", ErrInvalidConfig, id, format)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("disk %s: %w", id, err)
	}
	// Raw JSON: go-qemu's typed BlockdevAdd recurses until the stack overflows, and its
	// DeviceAdd cannot pass drive=.
	node := diskNodePrefix + id
	if _, err := v.run(ctx, "blockdev-add", map[string]any{
		"driver":    format,
		"node-name": node,
		"file":      map[string]any{"driver": "file", "filename": path},
	}); err != nil {
		return fmt.Errorf("disk %s: %w", id, err)
	}
	if _, err := v.run(ctx, "device_add", map[string]any{
		"driver": "virtio-blk-pci",
		"id":     diskDevPrefix + id,
		"drive":  node,
		"serial": id,
	}); err != nil {
		// Leave no orphan node behind, or the id could never be attached again.
		v.run(context.WithoutCancel(ctx), "blockdev-del", map[string]any{"node-name": node})
		return fmt.Errorf("disk %s: %w", id, err)
	}
	return nil
}

// DetachDisk unplugs disk id: device_del, then waits (bounded) for the guest to release
// it (DEVICE_DELETED), then removes the block node. A guest that ignores the ACPI unplug
// request keeps the disk and DetachDisk fails.
func (v *VM) DetachDisk(ctx context.Context, id string) error {
	if err := checkDiskID(id); err != nil {
		return err
	}
	dev, node := diskDevPrefix+id, diskNodePrefix+id
	deleted, unsub := v.subscribe(func(e qmp.Event) bool {
		d, _ := e.Data["device"].(string)
		return e.Event == "DEVICE_DELETED" && d == dev
	})
	defer unsub()
	devGone := false
	if _, err := v.run(ctx, "device_del", map[string]any{"id": dev}); err != nil {
		var qe *QMPError
		if !errors.As(err, &qe) || qe.Class != "DeviceNotFound" {
			return fmt.Errorf("disk %s: %w", id, err)
		}
		// Already unplugged (say, before an agent restart): only the node may remain.
		devGone = true
	}
	if !devGone {
		t := time.NewTimer(detachTimeout)
		defer t.Stop()
		select {
		case <-deleted:
		case <-t.C:
			return fmt.Errorf("disk %s: guest did not release the device within %s", id, detachTimeout)
		case <-v.done:
			return ErrNotRunning
		case <-ctx.Done():
			return fmt.Errorf("disk %s: waiting for the guest to release it: %w", id, ctx.Err())
		}
	}
	if _, err := v.run(ctx, "blockdev-del", map[string]any{"node-name": node}); err != nil {
		if devGone && strings.Contains(err.Error(), "find") {
			return fmt.Errorf("disk %s: %w", id, ErrNoDisk)
		}
		return fmt.Errorf("disk %s: %w", id, err)
	}
	return nil
}

// Disks lists the ids of hot-plugged disks, from QEMU itself, so that a re-attached VM
// knows what is plugged. A disk being unplugged stays listed until the guest releases it.
func (v *VM) Disks(ctx context.Context) ([]string, error) {
	out, err := v.run(ctx, "qom-list", map[string]any{"path": "/machine/peripheral"})
	if err != nil {
		return nil, err
	}
	var props []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(out, &props); err != nil {
		return nil, fmt.Errorf("qom-list: %w", err)
	}
	ids := []string{}
	for _, p := range props {
		if id, ok := strings.CutPrefix(p.Name, diskDevPrefix); ok && strings.HasPrefix(p.Type, "child<") {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
