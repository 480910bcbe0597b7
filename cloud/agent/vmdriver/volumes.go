package vmdriver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/hypervisor"
)

// A Volume is a qcow2 file on the node where it is first attached
// (StateDir/volumes/<namespace>_<uid>.qcow2); it stays on that node, which the
// Volume's status records, and goes when the Volume is deleted.

func volumeFileName(v *api.VMVolume) string { return v.Namespace + "_" + v.UID + ".qcow2" }

func (d *Driver) volumePath(v *api.VMVolume) string {
	return filepath.Join(d.cfg.StateDir, "volumes", volumeFileName(v))
}

// volumeDevice is a volume's id inside QEMU (device and block node), short and safe.
func volumeDevice(v *api.VMVolume) string { return "vol" + shortID(v.UID)[:12] }

// syncVolumes plugs the volumes the instance asks for and unplugs the others,
// returning what is plugged, in spec order.
func (r *Reconciler) syncVolumes(ctx context.Context, inst *api.Instance, t *task) ([]api.InstanceVolumeStatus, error) {
	plugged, err := t.vm.Disks(ctx)
	if err != nil {
		return nil, err
	}
	isPlugged := map[string]bool{}
	for _, id := range plugged {
		isPlugged[id] = true
	}
	var errs []error
	var attached []api.InstanceVolumeStatus
	wanted := map[string]bool{}
	for _, name := range inst.Spec.Volumes {
		v, ok := r.vols.GetByName(inst.Namespace, name)
		if !ok {
			errs = append(errs, fmt.Errorf("volume %q not found", name))
			continue
		}
		dev := volumeDevice(v)
		wanted[dev] = true
		if !isPlugged[dev] {
			if err := r.plug(ctx, t, v, dev); err != nil {
				errs = append(errs, fmt.Errorf("volume %q: %w", name, err))
				continue
			}
		}
		attached = append(attached, api.InstanceVolumeStatus{Name: name, Device: dev})
	}
	for _, dev := range plugged {
		if wanted[dev] {
			continue
		}
		if err := t.vm.DetachDisk(ctx, dev); err != nil {
			errs = append(errs, fmt.Errorf("detaching %s: %w", dev, err))
			continue
		}
		r.log.Info("volume detached", zap.String("instance", inst.Key()), zap.String("device", dev))
	}
	return attached, errors.Join(errs...)
}

// plug makes the volume's file if it has none yet (recording this node as its
// home), then hot-plugs it.
func (r *Reconciler) plug(ctx context.Context, t *task, v *api.VMVolume, dev string) error {
	node := r.d.cfg.NodeName
	if n := v.Status.NodeName; n != "" && n != node {
		return fmt.Errorf("its file is on node %s, not on %s", n, node)
	}
	path := r.d.volumePath(v)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := hypervisor.CreateBlank(ctx, path, int64(v.Spec.SizeGB)<<30); err != nil {
			return err
		}
	}
	if v.Status.NodeName == "" {
		if _, err := client.ModifyStatus(ctx, r.d.cfg.Client, v.Namespace, v.Name, func(vol *api.VMVolume) error {
			vol.Status.NodeName = node
			return nil
		}); err != nil {
			return err
		}
	}
	if err := t.vm.AttachDisk(ctx, dev, path, string(hypervisor.FormatQCOW2)); err != nil {
		return err
	}
	r.log.Info("volume attached", zap.String("instance", t.inst.key()), zap.String("volume", v.Name), zap.String("device", dev))
	return nil
}

// removeVolumeFile deletes a deleted volume's file from this node.
func (r *Reconciler) removeVolumeFile(v *api.VMVolume) {
	if err := os.Remove(r.d.volumePath(v)); err == nil {
		r.log.Info("removed the file of a deleted volume", zap.String("volume", v.Key()))
	}
}
