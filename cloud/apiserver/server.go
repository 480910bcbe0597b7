// Package apiserver serves cloudbox's REST API: Kubernetes-shaped paths over HTTPS,
// bearer-token authentication, validation and defaults at the edge, watch streams,
// health and metrics. It is the only holder of the store.
package apiserver

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/tunnel"
	"github.com/cloudbox/cloudbox/store"
)

// Config configures the API server.
type Config struct {
	// Store holds the objects. Required.
	Store store.Store
	// Tokens are the bearer tokens accepted. Required.
	Tokens *Tokens
	// CACert is served unauthenticated at /cacerts so a worker can fetch it and check
	// it against the hash its join token pins.
	CACert []byte
	// MaxBodyBytes limits request bodies. If zero, 3 MiB (Kubernetes's limit).
	MaxBodyBytes int64
	// Tunnels holds the agents' tunnels (logs and exec go through them). If nil, a
	// new registry.
	Tunnels *tunnel.Registry
	// TunnelWait is how long a logs or exec request waits for the node's agent to
	// connect. If zero, 5 s.
	TunnelWait time.Duration
	// KeyRing seals secrets at rest; /admin/rotate-encryption-key rotates it. May
	// be nil.
	KeyRing *store.KeyRing
	// Version is reported at /version.
	Version map[string]string
	// ServiceCIDR is the range Service cluster IPs come from; its first address is
	// the default/kubernetes Service's. If empty, DefaultServiceCIDR.
	ServiceCIDR string
	// NodePortRange is the inclusive range of NodePort Services' ports, as
	// "30000-32767". If empty, that range.
	NodePortRange string
	// DataDir keeps the files of VM images (DataDir/vm-images) and the record that
	// the default flavors were created. If empty, image imports are refused and the
	// default flavors are ensured at every start.
	DataDir string
	// MaxImageBytes limits a VM image import (all its files). If zero,
	// DefaultMaxImageBytes (64 GiB).
	MaxImageBytes int64
	// CheckImageFile reads an uploaded VM image file of a role (disk, kernel or
	// initrd) and returns its format ("qcow2" or "raw" for disks, "" otherwise) or why
	// it is not what the role says. If nil, a check of the headers QEMU goes by.
	CheckImageFile func(role, path string) (format string, err error)
	// Logger may be nil.
	Logger *zap.Logger
}

// Server is the API's HTTP handler. It is safe for concurrent use.
type Server struct {
	cfg     Config
	log     *zap.Logger
	mux     *http.ServeMux
	metrics *metrics
	ready   atomic.Bool
	// watchCtx ends every watch stream when the server shuts down.
	watchCtx    context.Context
	cancelWatch context.CancelFunc
	services    *serviceAllocator
	// watchDecodes shares the decoding of an event between the watches with selectors.
	watchDecodes watchDecodes
}

// New returns the API handler. It is not ready (/readyz fails) until SetReady.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 3 << 20
	}
	if cfg.MaxImageBytes == 0 {
		cfg.MaxImageBytes = DefaultMaxImageBytes
	}
	if cfg.CheckImageFile == nil {
		cfg.CheckImageFile = checkImageFile
	}
	if cfg.TunnelWait == 0 {
		cfg.TunnelWait = 5 * time.Second
	}
	if cfg.Tunnels == nil {
		cfg.Tunnels = tunnel.NewRegistry()
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux()}
	s.watchCtx, s.cancelWatch = context.WithCancel(context.Background())
	s.metrics = newMetrics(cfg.Store)
	s.services = newServiceAllocator(cfg, log.Named("services"))
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	s.mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	s.mux.HandleFunc("/readyz", s.serveReady)
	s.mux.HandleFunc("/cacerts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(cfg.CACert)
	})
	s.mux.Handle("/metrics", s.authenticated(s.metrics.handler()))
	s.mux.Handle("/version", s.authenticated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, cfg.Version)
	})))
	s.mux.Handle("/admin/backup", s.authenticated(http.HandlerFunc(s.serveBackup)))
	s.mux.Handle("/admin/rotate-encryption-key", s.authenticated(http.HandlerFunc(s.serveRotateKey)))
	// VM image files do not fit the REST tree's JSON bodies: they are streamed.
	s.mux.Handle("POST "+ImageImportPath, s.authenticated(http.HandlerFunc(s.serveImageImport)))
	s.mux.Handle("GET /apis/compute/v1/images/{name}/files/{role}", s.authenticated(http.HandlerFunc(s.serveImageFile)))
	s.mux.Handle("/api/", s.authenticated(http.HandlerFunc(s.serveResource)))
	s.mux.Handle("/apis/", s.authenticated(http.HandlerFunc(s.serveResource)))
	s.mux.Handle("/api", s.authenticated(http.HandlerFunc(s.serveResource)))
	s.mux.Handle("/apis", s.authenticated(http.HandlerFunc(s.serveResource)))
	return s
}

// SetReady marks the server ready (or not) for /readyz.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// Shutdown ends the open watch streams, so that http.Server.Shutdown does not wait
// for them.
func (s *Server) Shutdown() { s.cancelWatch() }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

type userKey struct{}

func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := s.cfg.Tokens.authenticate(r)
		if u == nil {
			writeJSON(w, http.StatusUnauthorized, newStatus(http.StatusUnauthorized, "Unauthorized",
				"a valid bearer token is required (see admin.config in the server's data dir)").status)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

func userOf(r *http.Request) *User { u, _ := r.Context().Value(userKey{}).(*User); return u }

func (s *Server) serveBackup(w http.ResponseWriter, r *http.Request) {
	if !userOf(r).Admin {
		writeError(w, newStatus(http.StatusForbidden, "Forbidden", "backup needs the admin token"), nil, "")
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, methodNotAllowed("use GET"), nil, "")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := s.cfg.Store.Backup(w); err != nil {
		s.log.Error("backup failed", zap.Error(err))
	}
}

// route is a parsed resource path.
type route struct {
	kind      *api.KindInfo
	strategy  *strategy
	namespace string
	name      string
	sub       string // a subresource of the kind ("status", "binding", ...) or ""
}

// parseRoute understands the Kubernetes REST tree:
//
//	/api/v1/RESOURCE[/NAME[/SUB]]
//	/api/v1/namespaces/NS/RESOURCE[/NAME[/SUB]]
//	/apis/GROUP/VERSION/... the same below
func parseRoute(path string) (*route, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var group, version string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		version, parts = parts[1], parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		group, version, parts = parts[1], parts[2], parts[3:]
	default:
		return nil, notFound("no such path: " + path)
	}
	rt := &route{}
	// namespaces/NS/RESOURCE... is a namespaced path, unless RESOURCE is not a
	// namespaced kind, in which case NS/SUB is a subresource of the namespace.
	if len(parts) >= 3 && parts[0] == "namespaces" {
		if k, ok := api.LookupResource(group, version, parts[2]); ok && k.Namespaced {
			rt.namespace, parts = parts[1], parts[2:]
		}
	}
	if len(parts) == 0 || parts[0] == "" {
		return nil, notFound("no resource named in path " + path)
	}
	k, ok := api.LookupResource(group, version, parts[0])
	if !ok {
		gv := version
		if group != "" {
			gv = group + "/" + version
		}
		return nil, notFound("the server could not find the requested resource: " + parts[0] + " in " + gv)
	}
	rt.kind, rt.strategy = k, strategyFor(k)
	if len(parts) > 1 {
		rt.name = parts[1]
	}
	if len(parts) > 2 {
		rt.sub = parts[2]
	}
	if len(parts) > 3 {
		return nil, notFound("no such path: " + path)
	}
	if err := checkSubresource(k, rt.sub); err != nil {
		return nil, err
	}
	return rt, nil
}

// verb is the Kubernetes verb a request maps to.
func verb(r *http.Request, rt *route) string {
	switch r.Method {
	case http.MethodGet:
		if isWatch(r) {
			return "watch"
		}
		if rt.name == "" {
			return "list"
		}
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return strings.ToLower(r.Method)
}

func isWatch(r *http.Request) bool {
	w := r.URL.Query().Get("watch")
	return w == "1" || w == "true"
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && s.serveDiscovery(w, r) {
		return
	}
	start := time.Now()
	rw := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	rt, err := parseRoute(r.URL.Path)
	v := verb(r, &route{})
	resource := "unknown"
	if err == nil {
		v = verb(r, rt)
		resource = rt.kind.Resource
		if rt.sub != "" {
			resource += "/" + rt.sub
		}
		if !userOf(r).allowed(v, rt.kind.Resource, rt.sub) {
			err = newStatus(http.StatusForbidden, "Forbidden",
				userOf(r).Name+" may not "+v+" "+rt.kind.Resource)
		}
	}
	if err != nil {
		writeError(rw, err, nil, "")
	} else {
		s.dispatch(rw, r, rt, v)
	}
	if v != "watch" {
		s.metrics.observe(v, resource, rw.code, time.Since(start))
	}
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, rt *route, verb string) {
	if rt.kind.Namespaced && rt.namespace == "" && verb != "list" && verb != "watch" {
		writeError(w, badRequest(rt.kind.Resource+" are namespaced: use /namespaces/NS/"+rt.kind.Resource), rt.kind, rt.name)
		return
	}
	if rt.name == "" && rt.sub != "" {
		writeError(w, notFound("subresource without a name"), rt.kind, "")
		return
	}
	if sub := rt.strategy.subresource(rt.sub); sub != nil {
		if serve := sub.handler(r.Method); serve != nil {
			if err := serve(s, w, r, rt); err != nil {
				writeError(w, err, rt.kind, rt.name)
			}
			return
		}
	}
	var err error
	switch verb {
	case "get":
		err = s.get(w, r, rt)
	case "list":
		err = s.list(w, r, rt)
	case "watch":
		err = s.watch(w, r, rt)
	case "create":
		if rt.name != "" {
			err = methodNotAllowed("POST creates in a collection: drop the name from the path")
		} else {
			err = s.create(w, r, rt)
		}
	case "update":
		err = s.update(w, r, rt)
	case "patch":
		err = s.patch(w, r, rt)
	case "delete":
		err = s.delete(w, r, rt)
	default:
		err = methodNotAllowed("method " + r.Method + " is not supported")
	}
	if err != nil {
		writeError(w, err, rt.kind, rt.name)
	}
}

// statusRecorder remembers the status code for metrics and passes Flush through
// for watch streams.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.NewResponseController reach Hijack for upgraded streams.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
