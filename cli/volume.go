package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() { registerCommand(volumeCommand()) }

var volumeKind = api.KindOfType[*api.VMVolume]()

func volumeCommand() *cli.Command {
	nsFlag := &cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"}
	return &cli.Command{
		Name:    "volume",
		Aliases: []string{"vol"},
		Usage:   "manage block devices for VMs (volumes)",
		Description: `A volume is a disk that outlives the VMs it is attached to, as a Cinder volume:
available, or in-use by an instance. Attaching and detaching change the instance's
volume list; a running VM gets the disk hot-plugged, or unplugged.

   cloudbox volume create data --size 10
   cloudbox volume attach data web-1
   cloudbox volume list
   cloudbox volume detach data web-1
   cloudbox volume delete data`,
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "create a volume", ArgsUsage: "NAME --size GB",
				Flags: []cli.Flag{nsFlag,
					&cli.IntFlag{Name: "size", Usage: fmt.Sprintf("size in GiB (%d to %d)", api.MinVolumeSizeGB, api.MaxVolumeSizeGB), Required: true},
					&cli.StringFlag{Name: "description", Usage: "a note for people"}},
				Action: volumeCreate},
			{Name: "list", Aliases: []string{"ls"}, Usage: "list volumes", Flags: listFlags(true),
				Action: func(c *cli.Context) error { return listObjects(c, volumeKind) }},
			{Name: "show", Usage: "show a volume and its attachments", ArgsUsage: "NAME",
				Flags:  []cli.Flag{nsFlag, &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json or yaml instead of text"}},
				Action: func(c *cli.Context) error { return showNamed(c, volumeKind, c.String("namespace")) }},
			{Name: "attach", Usage: "attach a volume to an instance", ArgsUsage: "VOLUME INSTANCE", Flags: []cli.Flag{nsFlag},
				Action: func(c *cli.Context) error { return volumeAttach(c, true) }},
			{Name: "detach", Usage: "detach a volume from an instance", ArgsUsage: "VOLUME INSTANCE", Flags: []cli.Flag{nsFlag},
				Action: func(c *cli.Context) error { return volumeAttach(c, false) }},
			{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a volume that no instance uses", ArgsUsage: "NAME", Flags: []cli.Flag{nsFlag},
				Action: volumeDelete},
		},
	}
}

func volumeCreate(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	v := client.NewObject[*api.VMVolume]()
	v.Name, v.Namespace = name, c.String("namespace")
	v.Spec = api.VMVolumeSpec{SizeGB: c.Int("size"), Description: c.String("description")}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	if _, err := cl.Create(c.Context, v); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "volume/%s created (%d GiB)\n", name, v.Spec.SizeGB)
	return nil
}

// volumeAttach adds the volume to the instance's spec.volumes, or takes it out; the
// node plugs or unplugs it and the volume's status follows.
func volumeAttach(c *cli.Context, attach bool) error {
	if c.Args().Len() != 2 {
		return fmt.Errorf("usage: cloudbox %s VOLUME INSTANCE", c.Command.FullName())
	}
	vol, inst := c.Args().Get(0), c.Args().Get(1)
	ns := c.String("namespace")
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	v, err := client.Get[*api.VMVolume](c.Context, cl, ns, vol)
	if err != nil {
		return err
	}
	if attach {
		for _, a := range v.Status.Attachments {
			if a.Instance != inst {
				return fmt.Errorf("volume %s is in use by instance %s: detach it there first", vol, a.Instance)
			}
		}
	}
	_, err = client.Modify(c.Context, cl, ns, inst, func(in *api.Instance) error {
		has := slices.Contains(in.Spec.Volumes, vol)
		switch {
		case attach && has:
			return fmt.Errorf("volume %s is already attached to instance %s", vol, inst)
		case !attach && !has:
			return fmt.Errorf("volume %s is not attached to instance %s (it has: %s)", vol, inst, orNone(strings.Join(in.Spec.Volumes, ", ")))
		case attach:
			in.Spec.Volumes = append(in.Spec.Volumes, vol)
		default:
			in.Spec.Volumes = slices.DeleteFunc(in.Spec.Volumes, func(v string) bool { return v == vol })
		}
		return nil
	})
	if err != nil {
		return err
	}
	if attach {
		fmt.Fprintf(c.App.Writer, "volume/%s attaching to instance/%s\n", vol, inst)
	} else {
		fmt.Fprintf(c.App.Writer, "volume/%s detaching from instance/%s\n", vol, inst)
	}
	return nil
}

// volumeDelete refuses a volume in use, naming the instances, as Cinder does: its
// data would vanish from under a running guest.
func volumeDelete(c *cli.Context) error {
	name, cl, err := nameAndClient(c)
	if err != nil {
		return err
	}
	ns := c.String("namespace")
	v, err := client.Get[*api.VMVolume](c.Context, cl, ns, name)
	if err != nil {
		return err
	}
	if v.Status.Phase == api.VolumeInUse || len(v.Status.Attachments) > 0 {
		return fmt.Errorf("volume %s is in use by instance %s: detach it first (cloudbox volume detach %s INSTANCE)", name, volumeAttachments(v), name)
	}
	// An instance may list it before its node has plugged it (or with no node yet).
	instances, err := client.ListTyped[*api.Instance](c.Context, cl, ns, client.ListOptions{})
	if err != nil {
		return err
	}
	for _, in := range instances {
		if slices.Contains(in.Spec.Volumes, name) {
			return fmt.Errorf("volume %s is attached to instance %s: detach it first (cloudbox volume detach %s %s)", name, in.Name, name, in.Name)
		}
	}
	if _, err := client.Delete[*api.VMVolume](c.Context, cl, ns, name); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "volume/%s deleted\n", name)
	return nil
}
