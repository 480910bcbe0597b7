package cli

import (
	"context"
	"fmt"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/server"
)

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "run a cloudbox server (all-in-one, master or worker)",
		Description: `Roles:
   all-in-one  API server, store, scheduler, controllers and a node agent on this host
   master      the control plane only; workers join it
   worker      a node agent that joins a master: --join URL --token TOKEN

At start a master writes DATA_DIR/admin.config (server URL, CA and admin token; the
CLI reads it) and DATA_DIR/join-token (give it to workers as --token).

   cloudbox server                                  # all-in-one on :6443
   cloudbox server --role master --data-dir /srv/cloudbox
   cloudbox server --role worker --join https://10.0.0.1:6443 --token K10...
   cloudbox server --cleanup                        # stop it and remove its state`,
		Flags: append(serverFlags(),
			&cli.BoolFlag{Name: "cleanup", Usage: "stop the server running on --data-dir and remove everything it created (uninstall)"},
			&cli.StringFlag{Name: "pprof", Usage: "serve Go's profiles (/debug/pprof/) on this loopback HOST:PORT, for profiling", EnvVars: []string{"CLOUDBOX_PPROF"}}),
		Action: runServer,
	}
}

// serverFlags are what configures a server: `server` takes them, and `install`
// writes them into the systemd unit.
func serverFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "role", Value: server.RoleAllInOne, Usage: "all-in-one, master or worker"},
		&cli.StringFlag{Name: "data-dir", Value: "/var/lib/cloudbox", Usage: "where state, certificates and tokens live"},
		&cli.StringFlag{Name: "listen", Value: "0.0.0.0:6443", Usage: "the API's HTTPS address (port 0 picks a free one)"},
		&cli.StringFlag{Name: "join", Usage: "worker: the master's URL, e.g. https://10.0.0.1:6443"},
		&cli.StringFlag{Name: "token", Usage: "worker: the join token from the master's DATA_DIR/join-token", EnvVars: []string{"CLOUDBOX_TOKEN"}},
		&cli.StringFlag{Name: "node-name", Usage: "this node's name (default: the host name)"},
		&cli.StringSliceFlag{Name: "node-label", Usage: "a label for this node, KEY=VALUE (repeatable)"},
		&cli.StringFlag{Name: "zone", Usage: "this node's availability zone (label topology.kubernetes.io/zone)"},
		&cli.StringFlag{Name: "scheduler", Value: "spread", Usage: "placement strategy: spread, binpack or random"},
		&cli.DurationFlag{Name: "node-monitor-grace-period", Value: 40 * time.Second, Usage: "how long a node may miss heartbeats before it is NotReady"},
		&cli.DurationFlag{Name: "heartbeat-interval", Value: 10 * time.Second, Usage: "how often the node agent heartbeats"},
		&cli.StringSliceFlag{Name: "insecure-registry", Usage: "a registry HOST:PORT that may be reached over plain HTTP (repeatable)"},
		&cli.StringSliceFlag{Name: "registry-mirror", Usage: "REGISTRY=URL: pull REGISTRY's images through a mirror, e.g. docker.io=http://127.0.0.1:5000 (repeatable)"},
		&cli.StringFlag{Name: "registry-config", Usage: "registry credentials in Docker's config.json format (what 'docker login' writes)"},
		&cli.StringFlag{Name: "pod-network", Value: "bridge", Usage: "bridge (pods get addresses on the node's bridge) or none (loopback only)"},
		&cli.StringFlag{Name: "bridge", Value: "cbx0", Usage: "the node bridge's name with --pod-network bridge"},
		&cli.StringFlag{Name: "vm-accel", Value: "auto", Usage: "how this node runs VMs: auto (KVM when a probe guest really boots under it, else TCG), kvm, tcg, or off (no VMs here)"},
		&cli.StringFlag{Name: "vm-probe-kernel", Usage: "the kernel the auto probe boots to test KVM (default: the newest /boot/vmlinuz-*; without one, auto picks TCG)"},
		&cli.StringFlag{Name: "qemu", Value: "qemu-system-x86_64", Usage: "the QEMU binary VMs run with"},
		&cli.BoolFlag{Name: "isolate-namespaces", Usage: "pods accept traffic only from their own namespace, in every namespace but kube-system (a namespace labelled cloudbox.io/network-isolation=false opts out)"},
		&cli.StringFlag{Name: "cluster-cidr", Value: "10.244.0.0/16", Usage: "pod addresses; each node gets a /24 of it"},
		&cli.StringFlag{Name: "service-cidr", Value: "10.96.0.0/16", Usage: "where Services' cluster IPs come from"},
		&cli.StringFlag{Name: "node-port-range", Value: "30000-32767", Usage: "the range NodePort Services' ports come from"},
		&cli.IntFlag{Name: "max-pods", Value: 110, Usage: "how many pods this node runs at most (its pods capacity, as the kubelet's --max-pods)"},
		&cli.StringFlag{Name: "cgroup-parent", Value: "/cloudbox", Usage: "the cgroup every pod goes under"},
	}
}

func runServer(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if c.Bool("cleanup") {
		return server.Cleanup(c.String("data-dir"), c.String("cgroup-parent"), log)
	}
	if c.Int("max-pods") < 1 {
		return fmt.Errorf("--max-pods %d: a node must be able to run at least one pod", c.Int("max-pods"))
	}
	if addr := c.String("pprof"); addr != "" {
		_, stopPprof, err := servePprof(addr, log.Named("pprof"))
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	labels, err := parseLabels(c.StringSlice("node-label"))
	if err != nil {
		return err
	}
	mirrors, err := parseMirrors(c.StringSlice("registry-mirror"))
	if err != nil {
		return err
	}
	auth, err := loadRegistryAuth(c.String("registry-config"))
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Role:                   c.String("role"),
		DataDir:                c.String("data-dir"),
		Listen:                 c.String("listen"),
		JoinURL:                c.String("join"),
		Token:                  c.String("token"),
		NodeName:               c.String("node-name"),
		NodeLabels:             labels,
		Zone:                   c.String("zone"),
		SchedulerStrategy:      c.String("scheduler"),
		NodeMonitorGracePeriod: c.Duration("node-monitor-grace-period"),
		HeartbeatInterval:      c.Duration("heartbeat-interval"),
		InsecureRegistries:     c.StringSlice("insecure-registry"),
		RegistryMirrors:        mirrors,
		RegistryAuth:           auth,
		CgroupParent:           c.String("cgroup-parent"),
		MaxPods:                c.Int("max-pods"),
		ClusterCIDR:            c.String("cluster-cidr"),
		PodNetwork:             c.String("pod-network"),
		Bridge:                 c.String("bridge"),
		ServiceCIDR:            c.String("service-cidr"),
		NodePortRange:          c.String("node-port-range"),
		IsolateNamespaces:      c.Bool("isolate-namespaces"),
		VMAccel:                c.String("vm-accel"),
		VMProbeKernel:          c.String("vm-probe-kernel"),
		QEMU:                   c.String("qemu"),
		Version:                VersionInfo(),
		Logger:                 log,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("starting cloudbox", zap.String("role", c.String("role")), zap.String("version", Version),
		zap.String("data_dir", c.String("data-dir")))
	return srv.Run(ctx)
}

// parseLabels reads KEY=VALUE pairs.
func parseLabels(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--node-label %q: want KEY=VALUE", p)
		}
		out[k] = v
	}
	return out, nil
}

// parseMirrors reads REGISTRY=URL pairs.
func parseMirrors(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		reg, u, ok := strings.Cut(p, "=")
		if !ok || reg == "" || !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
			return nil, fmt.Errorf("--registry-mirror %q: want REGISTRY=http(s)://HOST:PORT, e.g. docker.io=http://127.0.0.1:5000", p)
		}
		out[reg] = u
	}
	return out, nil
}
