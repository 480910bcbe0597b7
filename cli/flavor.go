package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() { registerCommand(flavorCommand()) }

var flavorKind = api.KindOfType[*api.Flavor]()

// listFlags are the flags of the compute kinds' list commands.
func listFlags(namespaced bool) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json, yaml, wide or name"},
		&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label selector"},
	}
	if namespaced {
		flags = append(flags, namespaceFlags()...)
	}
	return flags
}

func flavorCommand() *cli.Command {
	return &cli.Command{
		Name:  "flavor",
		Usage: "list and manage VM sizes (flavors)",
		Description: `A flavor is a size of VM: vCPUs, RAM in MiB and root disk in GiB. Flavors are
cluster-wide; m1.tiny (1/512/1), m1.small (1/2048/20), m1.medium (2/4096/40) and
m1.large (4/8192/80) exist from the first start. A flavor cannot change (VMs keep
the size they were made with); delete it and create another.

   cloudbox flavor list
   cloudbox flavor create m1.xlarge --vcpus 8 --ram 16384 --disk 160
   cloudbox flavor delete m1.xlarge`,
		Subcommands: []*cli.Command{
			{Name: "list", Aliases: []string{"ls"}, Usage: "list flavors", Flags: listFlags(false),
				Action: func(c *cli.Context) error { return listObjects(c, flavorKind) }},
			{Name: "show", Usage: "show a flavor", ArgsUsage: "NAME",
				Flags:  []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json or yaml instead of text"}},
				Action: func(c *cli.Context) error { return showNamed(c, flavorKind, "") }},
			{Name: "create", Usage: "create a flavor", ArgsUsage: "NAME --vcpus N --ram MB --disk GB",
				Description: `   cloudbox flavor create c1.small --vcpus 2 --ram 1024 --disk 10`,
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "vcpus", Usage: fmt.Sprintf("virtual CPUs (%d to %d)", api.MinFlavorVCPUs, api.MaxFlavorVCPUs), Required: true},
					&cli.IntFlag{Name: "ram", Usage: fmt.Sprintf("memory in MiB (%d to %d)", api.MinFlavorRAMMB, api.MaxFlavorRAMMB), Required: true},
					&cli.IntFlag{Name: "disk", Usage: fmt.Sprintf("root disk in GiB (%d to %d; 0: the image's size)", api.MinFlavorDiskGB, api.MaxFlavorDiskGB)},
				},
				Action: flavorCreate},
			{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a flavor (VMs made with it keep their size)", ArgsUsage: "NAME",
				Action: func(c *cli.Context) error { return deleteNamed(c, flavorKind, "") }},
		},
	}
}

func flavorCreate(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	f := client.NewObject[*api.Flavor]()
	f.Name = name
	f.Spec = api.FlavorSpec{VCPUs: c.Int("vcpus"), RAMMB: c.Int("ram"), DiskGB: c.Int("disk")}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	if _, err := cl.Create(c.Context, f); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "flavor/%s created (%d vCPU, %d MiB RAM, %d GiB disk)\n", name, f.Spec.VCPUs, f.Spec.RAMMB, f.Spec.DiskGB)
	return nil
}

// deleteNamed deletes the command's NAME of kind k in namespace ns, and waits until
// it is gone if the command has a --wait flag that is set.
func deleteNamed(c *cli.Context, k *api.KindInfo, ns string) error {
	name, cl, err := nameAndClient(c)
	if err != nil {
		return err
	}
	o, err := cl.Delete(c.Context, k, ns, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s/%s deleted\n", k.Singular, name)
	if c.Bool("wait") {
		return waitGone(c.Context, cl, o)
	}
	return nil
}
