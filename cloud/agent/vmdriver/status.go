package vmdriver

import (
	"context"
	"errors"
	"reflect"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

var instanceKind = api.KindOfType[*api.Instance]()

// reportStatus writes the node's part of an instance's status: what Start saw
// (address, PID, accelerator) and what the Reconciler applied (power state, reboots,
// volumes).
func (d *Driver) reportStatus(ctx context.Context, ref instanceRef, mutate func(*api.InstanceStatus)) {
	_, err := client.ModifyStatus(ctx, d.cfg.Client, ref.Namespace, ref.Name, func(inst *api.Instance) error {
		if inst.UID != ref.UID {
			return errGone
		}
		before := api.DeepCopyOf(inst).Status
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
