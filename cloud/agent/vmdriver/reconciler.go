package vmdriver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/hypervisor"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// resync is how often every running VM is looked at again without a change.
const resync = 30 * time.Second

// Reconciler keeps what the launcher pod does not carry in step with the Instance,
// against the VMs its Driver runs: the wanted power state (pause, resume), reboot
// requests, and the volumes, which are hot-plugged and unplugged as spec.volumes
// changes (volumes.go); it then reports what the node sees in the instance's status.
// It also removes the files of instances and volumes deleted from the API.
type Reconciler struct {
	d     *Driver
	log   *zap.Logger
	insts client.Typed[*api.Instance]
	vols  client.Typed[*api.VMVolume]
	// queue holds the keys of instances to look at again, from the informers, the
	// resync and retries (the Driver names the VMs it starts on d.started).
	queue chan string
}

// NewReconciler returns the reconciler of d's VMs. It reads Instances and Volumes
// from the process's shared informers, which whoever owns informers starts.
func NewReconciler(d *Driver, informers *client.Factory) *Reconciler {
	return &Reconciler{d: d, log: d.log, insts: client.For[*api.Instance](informers), vols: client.For[*api.VMVolume](informers),
		queue: make(chan string, 256)}
}

// Run reconciles the node's VMs until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	// The informers may be shared and outlive this reconciler: its handlers do
	// nothing once it stopped.
	enqueue := func(inst *api.Instance) {
		if ctx.Err() == nil {
			r.enqueue(inst.Key())
		}
	}
	r.insts.AddHandler(client.TypedHandler[*api.Instance]{
		OnAdd:    enqueue,
		OnUpdate: func(_, inst *api.Instance) { enqueue(inst) },
		OnDelete: func(inst *api.Instance) {
			if ctx.Err() == nil && r.d.running(inst.UID) == nil {
				r.d.removeInstanceDir(inst.UID)
			}
		},
	})
	r.vols.AddHandler(client.TypedHandler[*api.VMVolume]{OnDelete: func(v *api.VMVolume) {
		if ctx.Err() == nil {
			r.removeVolumeFile(v)
		}
	}})
	if !client.WaitForSync(ctx, r.insts.Informer, r.vols.Informer) {
		return
	}
	r.sweep()
	var retries sync.WaitGroup
	defer retries.Wait()
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		var key string
		select {
		case <-ctx.Done():
			return
		case key = <-r.queue:
		case key = <-r.d.started:
		case <-tick.C:
			for _, key := range r.d.runningInstances() {
				r.enqueue(key)
			}
			continue
		}
		inst, ok := r.insts.Get(key)
		if !ok {
			continue
		}
		if err := r.reconcile(ctx, inst); err != nil && ctx.Err() == nil {
			r.log.Warn("reconciling VM failed; retrying", zap.String("instance", key), zap.Error(err))
			retries.Go(func() {
				if clock.Sleep(r.d.cfg.Clock, 2*time.Second, ctx.Done()) {
					r.enqueue(key)
				}
			})
		}
	}
}

func (r *Reconciler) enqueue(key string) {
	select {
	case r.queue <- key:
	default: // full: the resync catches it
	}
}

// sweep removes the files of instances and volumes deleted while the agent was down.
func (r *Reconciler) sweep() {
	live := map[string]bool{}
	for _, inst := range r.insts.List() {
		live[shortID(inst.UID)] = true
	}
	dirs, _ := filepath.Glob(filepath.Join(r.d.cfg.StateDir, "instances", "*"))
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, taskFile)); err == nil || live[filepath.Base(dir)] {
			continue
		}
		r.log.Info("removing the files of an instance deleted while the agent was down", zap.String("dir", dir))
		_ = os.RemoveAll(dir)
	}
	liveVols := map[string]bool{}
	for _, v := range r.vols.List() {
		liveVols[volumeFileName(v)] = true
	}
	files, _ := filepath.Glob(filepath.Join(r.d.cfg.StateDir, "volumes", "*.qcow2"))
	for _, f := range files {
		if !liveVols[filepath.Base(f)] {
			r.log.Info("removing the file of a volume deleted while the agent was down", zap.String("file", f))
			_ = os.Remove(f)
		}
	}
}

// reconcile brings a running VM in line with its instance's spec and reports it.
func (r *Reconciler) reconcile(ctx context.Context, inst *api.Instance) error {
	t := r.d.running(inst.UID)
	if t == nil {
		return nil
	}
	vm := t.vm
	var errs []error
	rebootID := inst.Status.RebootID
	if rb := inst.Spec.Reboot; rb != nil && rb.ID != rebootID {
		var err error
		if rb.Type == api.RebootHard {
			err = vm.Reset(ctx)
		} else {
			err = vm.Reboot(ctx, r.d.cfg.SoftRebootTimeout)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reboot: %w", err))
		} else {
			rebootID = rb.ID
			r.log.Info("VM rebooted", zap.String("instance", inst.Key()), zap.String("type", rb.Type))
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
	attached, err := r.syncVolumes(ctx, inst, t)
	if err != nil {
		errs = append(errs, err)
	}
	power := api.PowerRunning
	if state == hypervisor.StatePaused {
		power = api.PowerPaused
	}
	r.d.reportStatus(ctx, t.inst, func(s *api.InstanceStatus) {
		s.PowerState, s.RebootID, s.Volumes = power, rebootID, attached
	})
	return errors.Join(errs...)
}
