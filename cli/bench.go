package cli

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/bench"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure cloudbox against its targets and a peer run beside it",
		Subcommands: []*cli.Command{
			{
				Name:  "controlplane",
				Usage: "start -> ready, idle RSS, creates/s with concurrent clients, watch latency",
				Description: `Starts an all-in-one server in a temporary data dir on a loopback port and
measures it. Creates per second is printed beside bare bbolt doing one fsynced
transaction per write in the same run.`,
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "creates", Value: 3000, Usage: "pods to create in the throughput phase"},
					&cli.IntFlag{Name: "clients", Value: 16, Usage: "concurrent clients"},
					&cli.IntFlag{Name: "watchers", Value: 100, Usage: "watch streams in the latency phase"},
				},
				Action: func(c *cli.Context) error {
					exe, err := os.Executable()
					if err != nil {
						return err
					}
					return bench.ControlPlane(c.Context, bench.ControlPlaneConfig{
						Binary: exe, Creates: c.Int("creates"), Clients: c.Int("clients"),
						Watchers: c.Int("watchers"), Out: c.App.Writer,
					})
				},
			},
		},
	}
}
