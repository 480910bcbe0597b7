// Package server starts the pieces a role needs (store, API server, scheduler,
// controllers, agent) and stops them in order. The CLI's `server` command only fills
// its Config.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/apiserver"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/cloud/controller"
	"github.com/cloudbox/cloudbox/cloud/scheduler"
	"github.com/cloudbox/cloudbox/runtime/image"
	"github.com/cloudbox/cloudbox/store"
)

// Roles a server can take.
const (
	RoleAllInOne = "all-in-one"
	RoleMaster   = "master"
	RoleWorker   = "worker"
)

// Config configures a server. Flags fill it in the cli package; nothing else reads
// flags.
type Config struct {
	// Role is all-in-one (default), master or worker.
	Role string
	// DataDir holds the store, certificates, tokens and admin.config. If empty,
	// /var/lib/cloudbox.
	DataDir string
	// Listen is the API's address. If empty, 0.0.0.0:6443. Port 0 picks a free port.
	Listen string
	// JoinURL and Token join a worker to its master.
	JoinURL string
	Token   string
	// NodeName names this node's Node; if empty, the host name.
	NodeName string
	// NodeLabels are extra labels on this node.
	NodeLabels map[string]string
	// Zone is this node's availability zone label.
	Zone string
	// SchedulerStrategy is spread (default), binpack or random.
	SchedulerStrategy string
	// NodeMonitorGracePeriod is how long a node may miss heartbeats before it is
	// marked NotReady. If zero, 40 s.
	NodeMonitorGracePeriod time.Duration
	// HeartbeatInterval is how often agents heartbeat. If zero, 10 s.
	HeartbeatInterval time.Duration
	// Version is reported by /version and on the node.
	Version map[string]string
	// Logger may be nil.
	Logger *zap.Logger
	// NodeResources overrides what the agent reads from the host (tests).
	NodeResources *agent.HostResources
	// MaxPods is this node's pod capacity (--max-pods). If zero, 110.
	MaxPods int
	// InsecureRegistries may be reached over plain HTTP (HOST:PORT).
	InsecureRegistries []string
	// RegistryMirrors maps a registry to a mirror URL ("docker.io" →
	// "http://127.0.0.1:5000"), so that offline sites pull through their own.
	RegistryMirrors map[string]string
	// RegistryAuth holds credentials per registry host for basic auth.
	RegistryAuth map[string]image.Credentials
	// CgroupParent is the cgroup every pod goes under. If empty, "/cloudbox".
	CgroupParent string
	// ClusterCIDR is split into one pod subnet per node. If empty, 10.244.0.0/16.
	ClusterCIDR string
	// PodNetwork is "bridge" (pods get addresses on the node's bridge) or ""/"none"
	// (pods have loopback only).
	PodNetwork string
	// Bridge is the node bridge's name with PodNetwork "bridge". If empty, cbx0.
	Bridge string
	// ServiceCIDR is where Services' cluster IPs come from. If empty, 10.96.0.0/16.
	ServiceCIDR string
	// NodePortRange is the node ports' range, "MIN-MAX". If empty, 30000-32767.
	NodePortRange string
	// IsolateNamespaces makes network isolation the default for every namespace
	// but kube-system (see podnet.LabelIsolation).
	IsolateNamespaces bool
	// VMAccel is the VM accelerator: auto (KVM if a probe guest boots under it, else
	// TCG), kvm, tcg, or off (this node runs no VMs). Empty means off.
	VMAccel string
	// VMProbeKernel is the kernel the auto probe boots; if empty, the newest
	// /boot/vmlinuz-*. Without one, auto picks TCG.
	VMProbeKernel string
	// QEMU is the emulator binary. If empty, qemu-system-x86_64.
	QEMU string
}

// Server is a running cloudbox server.
type Server struct {
	cfg   Config
	log   *zap.Logger
	ready chan struct{}
	// URL is the API's loopback URL, set once the listener is open.
	url string
	// factory is the master's shared informer factory (nil on a worker), set
	// before Ready is closed.
	factory *client.Factory
}

// New checks cfg and returns a server; Run starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Role == "" {
		cfg.Role = RoleAllInOne
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "/var/lib/cloudbox"
	}
	if cfg.Listen == "" {
		cfg.Listen = "0.0.0.0:6443"
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	switch cfg.Role {
	case RoleAllInOne, RoleMaster:
		if cfg.JoinURL != "" {
			return nil, fmt.Errorf("--join is for --role worker; a %s server is its own master", cfg.Role)
		}
	case RoleWorker:
		var missing []string
		if cfg.JoinURL == "" {
			missing = append(missing, "--join URL (the master's API, e.g. https://10.0.0.1:6443)")
		}
		if cfg.Token == "" {
			missing = append(missing, "--token TOKEN (from the master's DATA_DIR/join-token)")
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("--role worker needs %s", joinAnd(missing))
		}
		if _, _, err := apiserver.ParseJoinToken(cfg.Token); err != nil {
			return nil, fmt.Errorf("--token: %w", err)
		}
	default:
		return nil, fmt.Errorf("--role %q: must be all-in-one, master or worker", cfg.Role)
	}
	labels := map[string]string{api.LabelZone: cfg.Zone}
	for k, v := range cfg.NodeLabels {
		labels[k] = v
	}
	if err := api.ValidateLabels("--node-label", labels); err != nil {
		return nil, fmt.Errorf("%w (--zone sets %s)", err, api.LabelZone)
	}
	if err := checkVMConfig(&cfg); err != nil {
		return nil, err
	}
	switch cfg.PodNetwork {
	case "", "none", "bridge":
	default:
		return nil, fmt.Errorf("--pod-network %q: must be bridge or none", cfg.PodNetwork)
	}
	if _, err := scheduler.ParseStrategy(cfg.SchedulerStrategy); err != nil && cfg.SchedulerStrategy != "" {
		return nil, fmt.Errorf("--scheduler: %w", err)
	}
	return &Server{cfg: cfg, log: cfg.Logger, ready: make(chan struct{})}, nil
}

func joinAnd(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return items[0] + " and " + joinAnd(items[1:])
}

// Ready is closed once the server serves and every component has started.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// URL is the API's loopback URL (valid once Ready is closed).
func (s *Server) URL() string { return s.url }

// Run runs the role until ctx is cancelled, then stops every piece in order.
func (s *Server) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if s.cfg.Role == RoleWorker {
		return s.runWorker(ctx)
	}
	return s.runMaster(ctx)
}

// localURL is how this host reaches the API listening on addr: over loopback when it
// listens on every address, else on the one address it listens on (a master bound to
// 10.0.0.1 does not answer on 127.0.0.1).
func localURL(addr *net.TCPAddr) string {
	host := "127.0.0.1"
	if !addr.IP.IsUnspecified() {
		host = addr.IP.String()
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// pidFile lets `server --cleanup` find and stop a running server.
func (s *Server) pidFile() string { return filepath.Join(s.cfg.DataDir, "server.pid") }

func (s *Server) writePIDFile() error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(s.pidFile(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

func (s *Server) runMaster(ctx context.Context) error {
	dir := s.cfg.DataDir
	// Secrets are sealed at rest with a key of the data dir (rotated by
	// `cloudbox admin rotate-encryption-key`).
	keys, err := store.OpenKeyRing(filepath.Join(dir, "encryption-keys.json"), "secrets")
	if err != nil {
		return fmt.Errorf("encryption keys: %w", err)
	}
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{Logger: s.log.Named("store"), Sealer: keys})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := ensureNamespaces(ctx, st); err != nil {
		return err
	}
	hosts, ips := apiserver.LocalNames()
	certs, err := apiserver.EnsureCerts(dir, hosts, ips)
	if err != nil {
		return err
	}
	tokens, err := apiserver.EnsureTokens(dir)
	if err != nil {
		return err
	}
	apiSrv := apiserver.New(apiserver.Config{Store: st, Tokens: tokens, CACert: certs.CACert, Version: s.cfg.Version,
		KeyRing: keys, ServiceCIDR: s.cfg.ServiceCIDR, NodePortRange: s.cfg.NodePortRange, DataDir: dir, Logger: s.log.Named("apiserver")})
	if err := apiSrv.EnsureKubernetesService(ctx); err != nil {
		return err
	}
	if err := apiSrv.EnsureCompute(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server running? use --listen)", s.cfg.Listen, err)
	}
	cert, err := tls.X509KeyPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		ln.Close()
		return err
	}
	httpSrv := &http.Server{
		Handler:           apiSrv,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.ServeTLS(ln, "", "") }()
	defer func() {
		apiSrv.Shutdown()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(sctx)
	}()

	s.url = localURL(ln.Addr().(*net.TCPAddr))
	adminCfg := client.Config{Server: s.url, CACert: certs.CACert, Token: tokens.Admin}
	if err := client.WriteConfigFile(filepath.Join(dir, "admin.config"), adminCfg); err != nil {
		return fmt.Errorf("write admin.config: %w", err)
	}
	joinToken := apiserver.JoinToken(certs.CACert, tokens.NodeSecret)
	if err := os.WriteFile(filepath.Join(dir, "join-token"), []byte(joinToken+"\n"), 0o600); err != nil {
		return err
	}
	if err := s.writePIDFile(); err != nil {
		return err
	}
	defer os.Remove(s.pidFile())

	cl, err := client.New(adminCfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	go1 := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }

	// One informer per kind for the whole master: the scheduler, the controllers and
	// the garbage collector all read from this factory's caches.
	factory := client.NewFactory(cl, client.FactoryOptions{Logger: s.log.Named("informer")})
	if err := s.startControlPlane(ctx, controller.Deps{Client: cl, Factory: factory, Logger: s.log}, go1); err != nil {
		return err
	}
	factory.Start(ctx)
	go1(factory.Wait)
	s.factory = factory
	var node *Node
	if s.cfg.Role == RoleAllInOne {
		// The all-in-one role is a master plus a worker that joins over loopback with
		// the join token, so the join path is exercised on every laptop (k3s does the
		// same).
		node, err = NewNode(ctx, s.cfg, NodeConfig{JoinURL: s.url, Token: joinToken, ControlPlane: true, Informers: factory})
		if err != nil {
			return err
		}
		go1(func() {
			if err := node.Run(ctx); err != nil {
				s.log.Error("the node stopped", zap.Error(err))
			}
		})
	}
	go1(func() {
		if !factory.WaitForSync(ctx) {
			return
		}
		if node != nil {
			select {
			case <-node.Registered():
			case <-ctx.Done():
				return
			}
		}
		apiSrv.SetReady(true)
		s.log.Info("cloudbox is ready", zap.String("role", s.cfg.Role), zap.String("url", s.url),
			zap.String("admin_config", filepath.Join(dir, "admin.config")))
		close(s.ready)
	})

	select {
	case <-ctx.Done():
		s.log.Info("shutting down")
		return nil
	case err := <-serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("API server: %w", err)
	}
}

// startControlPlane sets up the scheduler and the controllers on d's factory (so
// that every informer they read exists before the factory starts) and runs them
// through goFn.
func (s *Server) startControlPlane(ctx context.Context, d controller.Deps, goFn func(func())) error {
	sched, err := newSchedulerLoop(d.Client, d.Factory, s.cfg.SchedulerStrategy, s.log.Named("scheduler"))
	if err != nil {
		return err
	}
	lifecycle := controller.NewNodeLifecycle(d.Named("node-lifecycle"), s.cfg.NodeMonitorGracePeriod)
	nodeIPAM, err := controller.NewNodeIPAM(d.Named("node-ipam"), s.cfg.ClusterCIDR)
	if err != nil {
		return fmt.Errorf("--cluster-cidr: %w", err)
	}
	// Pods reach the API server through the default/kubernetes Service.
	listenHost, _, _ := net.SplitHostPort(s.cfg.Listen)
	_, apiPort, _ := net.SplitHostPort(s.url[len("https://"):])
	port, _ := strconv.Atoi(apiPort)
	kubeEndpoints := controller.NewKubernetesEndpoints(d.Named("kubernetes-endpoints"), listenHost, port)
	goFn(func() { sched.Run(ctx) })
	goFn(func() { lifecycle.Run(ctx) })
	goFn(func() { nodeIPAM.Run(ctx) })
	goFn(func() { kubeEndpoints.Run(ctx) })
	controller.StartAll(ctx, d, goFn)
	return nil
}

// runWorker runs a Node that joins the master at JoinURL.
func (s *Server) runWorker(ctx context.Context) error {
	if err := s.writePIDFile(); err != nil {
		return err
	}
	defer os.Remove(s.pidFile())
	node, err := NewNode(ctx, s.cfg, NodeConfig{JoinURL: s.cfg.JoinURL, Token: s.cfg.Token})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var g errgroup.Group
	g.Go(func() error {
		defer stop()
		return node.Run(ctx)
	})
	g.Go(func() error {
		select {
		case <-node.Registered():
			s.log.Info("worker joined", zap.String("master", s.cfg.JoinURL), zap.String("node", node.Name()))
			close(s.ready)
		case <-ctx.Done():
		}
		return nil
	})
	return g.Wait()
}

// ensureNamespaces creates the namespaces that exist from the first start.
func ensureNamespaces(ctx context.Context, st store.Store) error {
	nsKind := api.KindOfType[*api.Namespace]()
	for _, name := range []string{"default", "kube-system"} {
		ns := client.NewObject[*api.Namespace]()
		ns.Name = name
		ns.Status.Phase = api.NamespaceActive
		if _, err := st.Create(ctx, nsKind, ns); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	return nil
}
