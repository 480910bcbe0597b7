package cli

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	registerCommand(&cli.Command{
		Name:      "create",
		Usage:     "create the objects of manifests (failing for each that exists), or a Job from a CronJob",
		ArgsUsage: "-f FILE | job NAME --from cronjob/CRONJOB",
		Description: `Unlike apply, create never changes an existing object: each object that exists
already fails with AlreadyExists, as kubectl create does; the others are created.

   cloudbox create -f web.yaml           # deployment.apps/web created
   cloudbox create job now --from cronjob/backup`,
		Flags:       manifestFlags(false),
		Subcommands: []*cli.Command{createJobCommand()},
		Action: func(c *cli.Context) error {
			if len(c.StringSlice("filename")) == 0 {
				return fmt.Errorf("name the manifests with -f FILE (or create a Job: cloudbox create job NAME --from cronjob/CRONJOB)")
			}
			return eachManifestObject(c, createOne)
		},
	})
	registerCommand(&cli.Command{
		Name:      "replace",
		Usage:     "replace objects by the ones of manifests (failing for each that does not exist)",
		ArgsUsage: "-f FILE",
		Description: `Writes each object of the manifests over the stored one (an HTTP PUT), as kubectl
replace does: what the manifest leaves out is gone (the status and what the control
plane fills in, such as a pod's node, are kept). An object that does not exist fails
with NotFound; a resourceVersion in the manifest must still be the stored one.

   cloudbox replace -f web.yaml          # deployment.apps/web replaced`,
		Flags: manifestFlags(true),
		Action: func(c *cli.Context) error {
			return eachManifestObject(c, replaceOne)
		},
	})
}

// createOne creates obj; an existing object of that name is an error.
func createOne(ctx context.Context, cl *client.Client, _ *api.KindInfo, obj api.Object) (string, error) {
	if _, err := cl.Create(ctx, obj); err != nil {
		return "", err
	}
	return "created", nil
}

// replaceOne writes obj over the stored object of its name, which must exist.
func replaceOne(ctx context.Context, cl *client.Client, k *api.KindInfo, obj api.Object) (string, error) {
	m := obj.GetObjectMeta()
	if m.Name == "" {
		return "", &api.FieldError{Field: "metadata.name", Reason: "required to replace an object"}
	}
	cur, err := cl.Get(ctx, k, m.Namespace, m.Name)
	if err != nil {
		return "", err
	}
	keepServerSetFields(cur, obj)
	if _, err := cl.Update(ctx, obj); err != nil {
		return "", err
	}
	return "replaced", nil
}
