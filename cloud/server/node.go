package server

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/cloud/agent/containerdriver"
	"github.com/cloudbox/cloudbox/cloud/agent/podnet"
	"github.com/cloudbox/cloudbox/cloud/agent/vmdriver"
	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/cloud/events"
	"github.com/cloudbox/cloudbox/cloud/tunnel"
	"github.com/cloudbox/cloudbox/net/ipam"
	"github.com/cloudbox/cloudbox/runtime/image"
)

// NodeConfig says how a Node joins its master and what it shares with the rest of
// its process; everything else a node is comes from the server's Config.
type NodeConfig struct {
	// JoinURL is the master's API and Token its join token.
	JoinURL, Token string
	// ControlPlane marks the node as also running the master (all-in-one).
	ControlPlane bool
	// Informers is the process's shared informer factory (the master's, in
	// all-in-one), started and stopped by its owner; every part of the node reads
	// from it. If nil, the Node makes its own over its node client and runs it.
	Informers *client.Factory
}

// Node is what a worker runs: its informers (unless shared), the container driver,
// the VM driver's reconciler, the pod network, the agent, the service proxy, the
// cluster DNS and the tunnel to the master. Run starts them in that order and stops
// them in reverse. The all-in-one role runs one beside the master.
type Node struct {
	cfg    Config
	log    *zap.Logger
	name   string
	client *client.Client

	informers    *client.Factory
	ownInformers bool

	agent        *agent.Agent
	containers   *containerdriver.Driver
	vms          *vmdriver.Driver     // nil on a node that runs no VMs
	vmReconciler *vmdriver.Reconciler // nil likewise
	network      *podnet.Network      // nil without a pod network
}

// NewNode joins the master at nc.JoinURL (retrying while it is unreachable, until
// ctx ends) and assembles the node's parts; Run runs them. On error nothing is left
// open.
func NewNode(ctx context.Context, cfg Config, nc NodeConfig) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	clientCfg, err := Join(ctx, nc.JoinURL, nc.Token)
	if err != nil {
		return nil, err
	}
	cl, err := client.New(clientCfg)
	if err != nil {
		return nil, err
	}
	res := cfg.NodeResources
	if res == nil {
		if res, err = agent.ReadHostResources(); err != nil {
			return nil, err
		}
	}
	n := &Node{cfg: cfg, name: cfg.NodeName, client: cl, informers: nc.Informers}
	if n.name == "" {
		n.name = res.Hostname
	}
	n.log = cfg.Logger.With(zap.String("node", n.name))
	var podNetwork agent.PodNetwork // nil, not a nil *podnet.Network, without one
	if cfg.PodNetwork == "bridge" {
		clusterCIDR := cfg.ClusterCIDR
		if clusterCIDR == "" {
			clusterCIDR = ipam.DefaultClusterCIDR
		}
		n.network = podnet.New(podnet.Config{Bridge: cfg.Bridge, ClusterCIDR: clusterCIDR,
			StateDir: filepath.Join(cfg.DataDir, "agent"), Logger: cfg.Logger.Named("podnet")})
		podNetwork = n.network
	}
	if n.informers == nil {
		n.informers = client.NewFactory(cl, client.FactoryOptions{Logger: cfg.Logger.Named("informer"), Scopes: n.informerScopes()})
		n.ownInformers = true
	}
	n.containers, err = containerdriver.New(containerdriver.Config{
		Network: podNetwork,
		DataDir: cfg.DataDir,
		// LockWait: a server killed just before on this data dir may still be exiting.
		Images: image.Options{InsecureRegistries: cfg.InsecureRegistries, Mirrors: cfg.RegistryMirrors, Auth: cfg.RegistryAuth,
			LockWait: 5 * time.Second},
		CgroupParent: cfg.CgroupParent,
		Logger:       cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	vmLabels, err := n.startVMDriver(ctx, podNetwork)
	if err != nil {
		n.containers.Close()
		return nil, err
	}
	rec := events.NewRecorder(cl, "agent")
	rec.Logger = cfg.Logger.Named("agent")
	rec.Host = n.name
	agentCfg := agent.Config{
		Client: cl, Informers: n.informers, NodeName: n.name, Labels: cfg.NodeLabels, Zone: cfg.Zone,
		HeartbeatInterval: cfg.HeartbeatInterval, Resources: res, MaxPods: cfg.MaxPods,
		ControlPlane: nc.ControlPlane, Version: cfg.Version["version"], Logger: cfg.Logger,
		Driver: n.containers, StateDir: filepath.Join(cfg.DataDir, "agent"), Network: podNetwork, Recorder: rec,
	}
	vmAgentConfig(&agentCfg, n.vms, vmLabels)
	if n.agent, err = agent.New(agentCfg); err != nil {
		n.containers.Close()
		return nil, err
	}
	return n, nil
}

// informerScopes narrows the node's own informers to what it needs: its Node and,
// without a pod network, its pods. The service proxy needs every pod, since an
// isolated namespace lets in its pods from any node.
func (n *Node) informerScopes() map[string]client.ListOptions {
	scopes := map[string]client.ListOptions{
		api.KindOfType[*api.Node]().Resource: {FieldSelector: "metadata.name=" + n.name},
	}
	if n.network == nil {
		scopes[api.KindOfType[*api.Pod]().Resource] = client.ListOptions{FieldSelector: "spec.nodeName=" + n.name}
	}
	return scopes
}

// Name is the node's name.
func (n *Node) Name() string { return n.name }

// Registered is closed once the node's Node object exists.
func (n *Node) Registered() <-chan struct{} { return n.agent.Registered() }

// Run runs the node's parts until ctx ends or one fails, then stops them in reverse
// order and closes the container driver (containers and VMs keep running, for the
// next start to adopt). Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	return runParts(ctx, n.log, n.parts())
}

// parts lists what Run starts, in order; each part may use those before it.
func (n *Node) parts() []part {
	var ps []part
	if n.ownInformers {
		ps = append(ps, part{"informers", func(ctx context.Context) error {
			n.informers.Start(ctx)
			<-ctx.Done()
			n.informers.Wait()
			return nil
		}})
	}
	ps = append(ps, part{"container driver", func(ctx context.Context) error {
		<-ctx.Done()
		if err := n.containers.Close(); err != nil {
			n.log.Warn("closing the container driver failed", zap.Error(err))
		}
		return nil
	}})
	if n.vmReconciler != nil {
		ps = append(ps, part{"VM reconciler", func(ctx context.Context) error { n.vmReconciler.Run(ctx); return nil }})
	}
	if n.network != nil {
		ps = append(ps, part{"pod network", func(ctx context.Context) error { n.startNetwork(ctx); return nil }})
	}
	ps = append(ps, part{"agent", n.agent.Run})
	if n.network != nil {
		ps = append(ps,
			part{"service proxy", func(ctx context.Context) error {
				podnet.RunServices(ctx, podnet.ServicesConfig{Informers: n.informers, Network: n.network, NodeName: n.name,
					IsolateNamespaces: n.cfg.IsolateNamespaces, Logger: n.cfg.Logger.Named("services")})
				return nil
			}},
			part{"cluster DNS", func(ctx context.Context) error {
				podnet.RunDNS(ctx, podnet.DNSConfig{Informers: n.informers, Network: n.network, Logger: n.cfg.Logger})
				return nil
			}})
	}
	return append(ps, part{"tunnel", func(ctx context.Context) error {
		tunnel.Connect(ctx, func(ctx context.Context) (net.Conn, error) {
			return n.client.Upgrade(ctx, http.MethodGet, "/api/v1/nodes/"+n.name+"/tunnel", nil)
		}, nodeBackend{agent: n.agent, images: n.containers.Images(), vms: n.vms}, n.cfg.Logger.Named("tunnel"))
		return nil
	}})
}
