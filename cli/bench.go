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
				Name:  "pods",
				Usage: "pod create -> Running beside bare runc run and podman run",
				Description: `Starts an all-in-one server in a temporary data dir, imports a busybox image
built from busybox-static, and times pods; bare 'runc run' and 'podman run --rm' of
the same image are timed in the same run (each is skipped, with the reason, if not
installed). Needs root.`,
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "pods", Value: 50, Usage: "pods started one after another"},
					&cli.IntFlag{Name: "burst", Value: 100, Usage: "pods created at once"},
					&cli.IntFlag{Name: "peer-runs", Value: 20, Usage: "runs of each peer"},
				},
				Action: func(c *cli.Context) error {
					exe, err := os.Executable()
					if err != nil {
						return err
					}
					return bench.Pods(c.Context, bench.PodsConfig{Binary: exe, Pods: c.Int("pods"), Burst: c.Int("burst"),
						Peers: c.Int("peer-runs"), Out: c.App.Writer})
				},
			},
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
