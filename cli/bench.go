package cli

import (
	"os"
	"time"

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
				Name:  "network",
				Usage: "requests/s through a Service VIP vs the pod IP, sync of 1,000 Services, pod start with vs without the bridge network",
				Description: `Requests/s and Service sync run in network namespaces of their own (a bridge, a
server and a client pod, the node's proxy rules); sync is printed beside one
iptables command per rule. Pod create -> Running is timed on a server with the
bridge network and then on one with --pod-network none. Needs root and iptables.`,
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "duration", Value: 3 * time.Second, Usage: "length of each request phase"},
					&cli.IntFlag{Name: "clients", Value: 4, Usage: "concurrent HTTP clients"},
					&cli.IntFlag{Name: "services", Value: 1000, Usage: "Services in the sync phase"},
					&cli.IntFlag{Name: "pods", Value: 20, Usage: "pods started per network mode"},
				},
				Action: func(c *cli.Context) error {
					exe, err := os.Executable()
					if err != nil {
						return err
					}
					return bench.Network(c.Context, bench.NetworkConfig{Binary: exe, Duration: c.Duration("duration"),
						Clients: c.Int("clients"), Services: c.Int("services"), Pods: c.Int("pods"), Out: c.App.Writer})
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
			{
				Name:  "workloads",
				Usage: "a Deployment scaled from 0 to 100 replicas until all are Ready, beside 100 bare runc runs",
				Description: `Starts an all-in-one server in a temporary data dir, imports a busybox image
built from busybox-static, creates a Deployment of 'sleep 3600' pods with 0 replicas,
scales it to --replicas and times until its status reports them all Ready. The
same number of bare 'runc run's of 'true', one after another, are timed in the same
run before the server starts (target: the Deployment within 2 x their total).
Needs root and runc.`,
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "replicas", Value: 100, Usage: "replicas to scale to, and bare runc runs of the peer"},
				},
				Action: func(c *cli.Context) error {
					exe, err := os.Executable()
					if err != nil {
						return err
					}
					return bench.Workloads(c.Context, bench.WorkloadsConfig{Binary: exe, Replicas: c.Int("replicas"), Out: c.App.Writer})
				},
			},
			{
				Name:  "vm",
				Usage: "cloudbox vm create -> guest booted beside bare qemu-system-x86_64, and a burst of VMs at once",
				Description: `Builds the small test guest (a Debian cloud kernel and a busybox initramfs, cached
under /var/cache/cloudbox/guest) and boots it under TCG, --runs times each, in turn:
bare 'qemu-system-x86_64 -kernel -initrd' timed from exec, and 'cloudbox vm create'
on an all-in-one server in a temporary data dir timed from the create call, both until
the guest's first line (CLOUDBOX-GUEST-BOOTED) is on its serial console. It prints
both p50s and what cloudbox adds (target <= 150 ms). Then --burst bare QEMUs are
started at once, and --burst VMs created at once, each timed until it is ACTIVE and
its guest says it is ready. The server gets a bridge, cluster CIDR (10.246.0.0/16) and
cgroup of its own, and is removed afterwards with every VM. Needs root and QEMU
(qemu-system-x86, qemu-utils).`,
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "runs", Value: 5, Usage: "sequential boots of each kind"},
					&cli.IntFlag{Name: "burst", Value: 10, Usage: "VMs created at once"},
					&cli.IntFlag{Name: "memory", Value: 128, Usage: "each VM's memory in MiB"},
				},
				Action: func(c *cli.Context) error {
					exe, err := os.Executable()
					if err != nil {
						return err
					}
					return bench.VM(c.Context, bench.VMConfig{Binary: exe, Runs: c.Int("runs"), Burst: c.Int("burst"),
						MemoryMB: c.Int("memory"), Out: c.App.Writer})
				},
			},
			{
				Name:  "scheduler",
				Usage: "scheduler throughput in pods/s with simulated nodes, then through the API",
				Description: `Schedules --pods pods on --nodes simulated nodes with each strategy (spread,
binpack, random), the scheduler alone with an in-memory view and binder, and prints
pods/s beside the Kubernetes scheduler's published ~100 pods/s (not measured here).
Then starts a master-role server (no agent) in a temporary data dir, registers
--api-nodes Node objects through the API, creates --api-pods pods with 16 clients
and times until every one is bound (--api-pods -1 skips this phase).`,
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "nodes", Value: 1000, Usage: "simulated nodes of the in-memory phase"},
					&cli.IntFlag{Name: "pods", Value: 10000, Usage: "pods scheduled per strategy in the in-memory phase"},
					&cli.IntFlag{Name: "api-nodes", Value: 200, Usage: "Node objects of the API phase"},
					&cli.IntFlag{Name: "api-pods", Value: 2000, Usage: "pods of the API phase; -1 skips it"},
				},
				Action: func(c *cli.Context) error {
					exe, err := os.Executable()
					if err != nil {
						return err
					}
					return bench.Scheduler(c.Context, bench.SchedulerConfig{
						Binary: exe, Nodes: c.Int("nodes"), Pods: c.Int("pods"),
						APINodes: c.Int("api-nodes"), APIPods: c.Int("api-pods"), Out: c.App.Writer,
					})
				},
			},
		},
	}
}
