package vmdriver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/hypervisor"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// What the launcher pod does not carry is reconciled here, against the running VM:
// the wanted power state (pause, resume), reboot requests, and the volumes, which are
// hot-plugged and unplugged as spec.volumes changes. The node then reports what it
// sees in the instance's status.

// resync is how often every running VM is looked at again without a change.
const resync = 30 * time.Second

// Run watches Instances and Volumes and reconciles the node's VMs until ctx ends.
func (d *Driver) Run(ctx context.Context) {
	instKind, _ := api.LookupKind("instances")
	volKind, _ := api.LookupKind("volumes")
	insts := client.NewInformer(d.cfg.Client, instKind, "", client.ListOptions{}, d.log)
	vols := client.NewInformer(d.cfg.Client, volKind, "", client.ListOptions{}, d.log)
	insts.AddHandler(client.Handler{
		OnAdd:    func(o api.Object) { d.enqueue(o.GetObjectMeta().Key()) },
		OnUpdate: func(_, o api.Object) { d.enqueue(o.GetObjectMeta().Key()) },
		OnDelete: func(o api.Object) {
			m := o.GetObjectMeta()
			if d.running(m.UID) == nil {
				d.removeInstanceDir(m.UID)
			}
		},
	})
	vols.AddHandler(client.Handler{OnDelete: func(o api.Object) { d.removeVolumeFile(o.(*api.VMVolume)) }})
	if !client.StartInformers(ctx, insts, vols) {
		return
	}
	d.sweep(insts, vols)
	var retries sync.WaitGroup
	defer retries.Wait()
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case key := <-d.kick:
			o := insts.Get(key)
			if o == nil {
				continue
			}
			if err := d.reconcile(ctx, o.(*api.Instance), vols); err != nil && ctx.Err() == nil {
				d.log.Warn("reconciling VM failed; retrying", zap.String("instance", key), zap.Error(err))
				retries.Go(func() {
					if clock.Sleep(d.cfg.Clock, 2*time.Second, ctx.Done()) {
						d.enqueue(key)
					}
				})
			}
		case <-tick.C:
			d.mu.Lock()
			for _, t := range d.tasks {
				d.enqueue(t.inst.key())
			}
			d.mu.Unlock()
		}
	}
}

func (d *Driver) enqueue(key string) {
	select {
	case d.kick <- key:
	default: // full: the resync catches it
	}
}

// sweep removes the files of instances and volumes deleted while the agent was down.
func (d *Driver) sweep(insts, vols *client.Informer) {
	live := map[string]bool{}
	for _, o := range insts.List() {
		live[shortID(o.GetObjectMeta().UID)] = true
	}
	dirs, _ := filepath.Glob(filepath.Join(d.cfg.StateDir, "instances", "*"))
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, taskFile)); err == nil || live[filepath.Base(dir)] {
			continue
		}
		d.log.Info("removing the files of an instance deleted while the agent was down", zap.String("dir", dir))
		_ = os.RemoveAll(dir)
	}
	liveVols := map[string]bool{}
	for _, o := range vols.List() {
		liveVols[volumeFileName(o.(*api.VMVolume))] = true
	}
	files, _ := filepath.Glob(filepath.Join(d.cfg.StateDir, "volumes", "*.qcow2"))
	for _, f := range files {
		if !liveVols[filepath.Base(f)] {
			d.log.Info("removing the file of a volume deleted while the agent was down", zap.String("file", f))
			_ = os.Remove(f)
		}
	}
}

// reconcile brings a running VM in line with its instance's spec and reports it.
func (d *Driver) reconcile(ctx context.Context, inst *api.Instance, vols *client.Informer) error {
	t := d.running(inst.UID)
	if t == nil {
		return nil
	}
	vm := t.vm
	var errs []error
	rebootID := inst.Status.RebootID
	if r := inst.Spec.Reboot; r != nil && r.ID != rebootID {
		var err error
		if r.Type == api.RebootHard {
			err = vm.Reset(ctx)
		} else {
			err = vm.Reboot(ctx, d.cfg.SoftRebootTimeout)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reboot: %w", err))
		} else {
			rebootID = r.ID
			d.log.Info("VM rebooted", zap.String("instance", inst.Key()), zap.String("type", r.Type))
		}
	}
	state, err := vm.State(ctx)
	if err != nil {
		return err
	}
	switch {
	case inst.Spec.PowerState == api.PowerPaused && state == hypervisor.StateRunning:
		err = vm.Pause(ctx)
	case inst.Spec.PowerState != api.PowerPaused && state == hypervisor.StatePaused:
		err = vm.Resume(ctx)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if state, err = vm.State(ctx); err != nil {
		return err
	}
	attached, err := d.syncVolumes(ctx, inst, t, vols)
	if err != nil {
		errs = append(errs, err)
	}
	power := api.PowerRunning
	if state == hypervisor.StatePaused {
		power = api.PowerPaused
	}
	d.reportStatus(ctx, t.inst, func(s *api.InstanceStatus) {
		s.PowerState, s.RebootID, s.Volumes = power, rebootID, attached
	})
	return errors.Join(errs...)
}

// reportStatus writes the node's part of an instance's status.
func (d *Driver) reportStatus(ctx context.Context, ref instanceRef, mutate func(*api.InstanceStatus)) {
	k, _ := api.LookupKind("instances")
	_, err := d.cfg.Client.ModifyStatus(ctx, k, ref.Namespace, ref.Name, func(o api.Object) error {
		inst := o.(*api.Instance)
		if inst.UID != ref.UID {
			return errGone
		}
		before := api.DeepCopy(inst).(*api.Instance).Status
		mutate(&inst.Status)
		if reflect.DeepEqual(before, inst.Status) {
			return errUnchanged
		}
		return nil
	})
	if err != nil && !client.IsNotFound(err) && !errors.Is(err, errGone) && !errors.Is(err, errUnchanged) && ctx.Err() == nil {
		d.log.Warn("reporting instance status failed", zap.String("instance", ref.key()), zap.Error(err))
	}
}

var (
	errGone      = errors.New("instance replaced")
	errUnchanged = errors.New("status unchanged")
)
