// Package agent is the node agent (kubelet and nova-compute in one): it registers its
// Node, heartbeats, and drives the pods bound to it through a Driver: one worker per
// pod (podworker.go, sync.go) runs init containers and containers, restarts them with
// back-off (backoff.go), probes them (probes.go), sets up their volumes, environment
// and per-pod files (volumes.go, env.go, hosts.go), reports their status (status.go),
// stops them on deletion (terminate.go), and adopts the tasks of a previous agent
// (adopt.go, handles.go).
package agent

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/cloud/events"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// Config configures an agent.
type Config struct {
	// Client talks to the API. Required.
	Client *client.Client
	// Informers is the process's shared informer factory, which the agent reads
	// pods and claims from; its owner starts it. It may hold every pod of the
	// cluster: the agent picks those bound to NodeName. If nil, the agent makes its
	// own over Client, with pods narrowed to its node, and runs it while Run runs.
	Informers *client.Factory
	// NodeName is the Node's name. If empty, the host name.
	NodeName string
	// Labels are added to the Node's labels (from --node-label).
	Labels map[string]string
	// Zone becomes the topology.kubernetes.io/zone label if not empty.
	Zone string
	// HeartbeatInterval is how often the Node's Ready condition is renewed. If zero,
	// 10 s.
	HeartbeatInterval time.Duration
	// Resources overrides what is read from the host (for tests). May be nil.
	Resources *HostResources
	// MaxPods is the node's pod capacity, which the scheduler fills up to (the
	// kubelet's --max-pods). If zero, Resources.Pods (110 when read from the host).
	MaxPods int
	// ControlPlane marks the node as also running the control plane.
	ControlPlane bool
	// Version is reported in the node's info.
	Version string
	Logger  *zap.Logger

	// Driver runs the pods' containers. If nil, the agent runs no workloads: it only
	// completes the deletion of the pods bound to its node.
	Driver Driver
	// Runtimes are further drivers, by the runtimeClassName of the pods they run
	// (api.RuntimeClassVM: the VM driver). A pod whose runtimeClassName is empty runs
	// with Driver.
	Runtimes map[string]Driver
	// StateDir is where the agent keeps the handles of its tasks and the pods'
	// volumes (DATA_DIR/agent). Required with a Driver; a restarted agent must get the
	// same one to adopt its tasks.
	StateDir string
	// Clock times back-off, probes and grace periods. If nil, the machine's.
	Clock Clock
	// Network is the node's pod network, the one the drivers attach pods to: it
	// gives a pod's IP address (for status.podIP, the downward API, /etc/hosts and
	// probes) and its /etc/resolv.conf (the cluster DNS). If nil, pods have loopback
	// only and the host's resolv.conf.
	Network PodNetwork
	// BackoffBase and BackoffMax bound the restart and image-pull back-off: the delay
	// starts at BackoffBase and doubles up to BackoffMax. If zero, 10 s and 5 min.
	BackoffBase, BackoffMax time.Duration
	// BackoffReset is how long a container must run for its back-off to start over.
	// If zero, 10 min.
	BackoffReset time.Duration
	// Recorder receives the events about the node's pods (Pulling, Started, Killing,
	// BackOff, Unhealthy...), which Run writes while the agent runs. If nil, the
	// agent records no events.
	Recorder *events.Recorder
	// ResolvConf and HostsFile are the host's files that pods get a copy of
	// (/etc/hosts only with hostNetwork). If empty, /etc/resolv.conf and /etc/hosts.
	ResolvConf, HostsFile string
}

// Agent runs on every node. Its methods are safe for concurrent use.
type Agent struct {
	cfg Config
	log *zap.Logger
	// registered is closed once the Node exists.
	registered chan struct{}
	// informers is cfg.Informers, or the agent's own when ownInformers.
	informers    *client.Factory
	ownInformers bool
	// podInformer holds the pods bound to the node, and maybe others.
	podInformer client.Typed[*api.Pod]
	// pods drives the pods bound to the node; nil without a Driver.
	pods *podManager
	// wg counts the goroutines Run started, so that Run returns after them.
	wg sync.WaitGroup
	// claimsSwept, if not nil, is called after each sweep of the claims' local
	// volumes with its error (tests wait on it); set it before Run.
	claimsSwept func(error)
}

// New returns an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("agent: a client is required")
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Resources == nil {
		r, err := ReadHostResources()
		if err != nil {
			return nil, err
		}
		cfg.Resources = r
	}
	switch {
	case cfg.MaxPods < 0:
		return nil, fmt.Errorf("agent: MaxPods %d: must not be negative", cfg.MaxPods)
	case cfg.MaxPods > 0:
		r := *cfg.Resources // the caller's struct stays as it was
		r.Pods = cfg.MaxPods
		cfg.Resources = &r
	}
	if cfg.NodeName == "" {
		cfg.NodeName = cfg.Resources.Hostname
	}
	if cfg.Driver != nil && cfg.StateDir == "" {
		return nil, fmt.Errorf("agent: a state directory is required to run workloads")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = defaultBackoffBase
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = defaultBackoffMax
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffBase)
	if cfg.BackoffReset <= 0 {
		cfg.BackoffReset = defaultBackoffReset
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.HostsFile == "" {
		cfg.HostsFile = "/etc/hosts"
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.Named("agent").With(zap.String("node", cfg.NodeName)), registered: make(chan struct{}),
		informers: cfg.Informers}
	if a.informers == nil {
		a.informers = client.NewFactory(cfg.Client, client.FactoryOptions{Logger: a.log, Scopes: map[string]client.ListOptions{
			podKind.Resource: {FieldSelector: "spec.nodeName=" + cfg.NodeName},
		}})
		a.ownInformers = true
	}
	a.podInformer = client.For[*api.Pod](a.informers)
	if cfg.Driver != nil {
		if err := os.MkdirAll(a.podsDir(), 0o700); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		a.pods = newPodManager(a)
	}
	return a, nil
}

// spawn runs f on a goroutine that Run waits for before it returns.
func (a *Agent) spawn(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// policy is the back-off the agent applies to restarts and failed pulls.
func (a *Agent) policy() backoffPolicy {
	return backoffPolicy{Base: a.cfg.BackoffBase, Max: a.cfg.BackoffMax, Reset: a.cfg.BackoffReset}
}

// podIP is the pod's address on the pod network, or "".
func (a *Agent) podIP(p *api.Pod) string {
	if a.cfg.Network == nil || p == nil {
		return ""
	}
	return a.cfg.Network.PodIP(p.UID)
}

// hostIP is the node's address that pods see as status.hostIP.
func (a *Agent) hostIP() string {
	for _, ad := range a.cfg.Resources.Addresses {
		if ad.Type == "InternalIP" {
			return ad.Address
		}
	}
	return ""
}

// NodeName is the name this agent registers as.
func (a *Agent) NodeName() string { return a.cfg.NodeName }

// Registered is closed once the Node object exists.
func (a *Agent) Registered() <-chan struct{} { return a.registered }

// Run registers the node, then drives the pods bound to it and heartbeats until ctx
// is cancelled. Registration is retried with back-off while the API is unreachable (a
// worker may start before its master). When Run returns, the agent's goroutines have
// ended; the tasks keep running, for the next agent to adopt. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer a.wg.Wait()
	defer cancel()
	if a.ownInformers {
		a.informers.Start(ctx)
		a.spawn(a.informers.Wait)
	}
	backoff := 200 * time.Millisecond
	for {
		err := a.register(ctx)
		if err == nil {
			break
		}
		a.log.Warn("registering node failed; retrying", zap.Error(err), zap.Duration("in", backoff))
		if !clock.Sleep(a.cfg.Clock, backoff, ctx.Done()) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	close(a.registered)
	a.log.Info("node registered")
	if r := a.cfg.Recorder; r != nil {
		a.spawn(func() { r.Run(ctx) })
	}
	if a.pods != nil {
		a.spawn(func() { a.pods.run(ctx) })
	} else {
		a.spawn(func() { a.finishDeletions(ctx) })
	}
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := a.heartbeat(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("heartbeat failed", zap.Error(err))
			}
		}
	}
}

// desiredNode is the Node as this agent describes it.
func (a *Agent) desiredNode(existing *api.Node) *api.Node {
	n := existing
	if n == nil {
		n = client.NewObject[*api.Node]()
		n.Name = a.cfg.NodeName
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	r := a.cfg.Resources
	n.Labels[api.LabelHostname] = a.cfg.NodeName
	n.Labels[api.LabelOS] = "linux"
	n.Labels[api.LabelArch] = r.Arch
	if a.cfg.Zone != "" {
		n.Labels[api.LabelZone] = a.cfg.Zone
	}
	if a.cfg.ControlPlane {
		n.Labels[api.LabelRole] = "true"
	}
	for k, v := range a.cfg.Labels {
		n.Labels[k] = v
	}
	return n
}

func (a *Agent) status(prev *api.NodeStatus) api.NodeStatus {
	r := a.cfg.Resources
	now := api.Now()
	ready := api.NodeCondition{Type: api.NodeReady, Status: api.ConditionTrue, Reason: "AgentReady",
		Message: "cloudbox agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
	if prev != nil {
		if c := prev.Condition(api.NodeReady); c != nil && c.Status == api.ConditionTrue && c.LastTransitionTime != nil {
			ready.LastTransitionTime = c.LastTransitionTime
		}
	}
	return api.NodeStatus{
		Capacity:    r.List(),
		Allocatable: r.List(),
		Conditions:  []api.NodeCondition{ready},
		Addresses:   r.Addresses,
		NodeInfo: api.NodeSystemInfo{
			KernelVersion: r.Kernel, OSImage: r.OSImage, Architecture: r.Arch, OperatingSystem: "linux",
			AgentVersion: a.cfg.Version, ContainerRuntime: "cloudbox://" + a.cfg.Version,
		},
	}
}

// register creates the Node, or updates its labels if it exists (a restarted agent
// keeps its node), then posts a first status.
func (a *Agent) register(ctx context.Context) error {
	c := a.cfg.Client
	existing, err := client.Get[*api.Node](ctx, c, "", a.cfg.NodeName)
	switch {
	case client.IsNotFound(err):
		if _, err := c.Create(ctx, a.desiredNode(nil)); err != nil && !client.IsAlreadyExists(err) {
			return err
		}
	case err != nil:
		return err
	default:
		if _, err := c.Update(ctx, a.desiredNode(existing)); err != nil {
			return err
		}
	}
	return a.heartbeat(ctx)
}

// heartbeat renews the Ready condition through the status subresource.
func (a *Agent) heartbeat(ctx context.Context) error {
	n, err := client.Get[*api.Node](ctx, a.cfg.Client, "", a.cfg.NodeName)
	if err != nil {
		return err
	}
	n.Status = a.status(&n.Status)
	// The agent owns its node's status: write it unconditionally rather than lose a
	// heartbeat to a conflict with the lifecycle controller.
	n.ResourceVersion = ""
	_, err = a.cfg.Client.UpdateStatus(ctx, n)
	return err
}
