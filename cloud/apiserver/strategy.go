package apiserver

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// A strategy is what one kind does on the API beyond storing what clients send. The
// generic REST handlers (rest.go) call its hooks and serve its subresources, and name
// no kind themselves: a kind with something of its own declares it all in
// strategy_<kind>.go, and every other kind gets defaultStrategy. A nil hook means the
// kind has nothing of that sort.
//
// api.KindInfo's hooks (Default, Validate, ValidateUpdate) look at an object alone and
// run first; a strategy's hooks are for what needs the server: its store, its
// allocators, its files. A check that needs that state belongs in PrepareForCreate or
// BeginUpdate, which refuse with an error naming the field (an *api.FieldError), as a
// Service's taken cluster IP is refused. Each hook is called with objects of its own
// kind only, and with the request's context, which is where request-scoped values
// (such as warnings for the answer) travel.
type strategy struct {
	// PrepareForCreate readies a new object, defaulted and valid, for its first write:
	// it sets what the server owns (a pod's status) and takes from the server what the
	// object needs (a Service's cluster IP). What it takes it records in u, which is
	// run if it fails or the write does.
	PrepareForCreate func(s *Server, ctx context.Context, obj api.Object, u *undo) error

	// PrepareForUpdate copies into next, the object a PUT or PATCH of the main
	// resource would store, what the server set on the stored cur and a client may
	// leave out (a Service's allocated addresses). It runs before next is defaulted
	// and validated.
	PrepareForUpdate func(cur, next api.Object)
	// BeginUpdate takes from the server what next, defaulted and valid, needs beyond
	// cur, recording it in u as PrepareForCreate does. It runs before each attempt of
	// the write, which is retried when the object changed under it.
	BeginUpdate func(s *Server, ctx context.Context, cur, next api.Object, u *undo) error
	// AfterUpdate gives back, once the write is in, what before held and after no
	// longer needs.
	AfterUpdate func(s *Server, ctx context.Context, before, after api.Object)

	// ValidateDelete refuses a DELETE before anything is read (a namespace the system
	// needs).
	ValidateDelete func(namespace, name string) error
	// GracePeriod is how long obj has to go once a delete marked it, given the grace
	// period the delete asked for (nil if it named none). If nil, 0: the object goes at
	// once, finalizers permitting.
	GracePeriod func(obj api.Object, requested *int64) int64
	// PrepareForDelete changes obj as a delete marks it, in place of the finalizer the
	// delete's propagation policy adds (orphan, foregroundDeletion). If nil, that
	// finalizer is added.
	PrepareForDelete func(obj api.Object, propagationPolicy string)
	// AfterDelete runs once obj is gone from the store (an Image's files are removed).
	AfterDelete func(s *Server, ctx context.Context, obj api.Object)

	// Subresources are served below an object's path, NAME/SUB, besides the status
	// subresource every kind has.
	Subresources []subresource

	// TableColumns are the columns of the kind's server-side Table (what kubectl get
	// prints). If nil, the kind has no columns of its own.
	TableColumns []tableColumn
}

// A subresource is served at NAME/Name below an object's path.
type subresource struct {
	Name string
	// Methods maps the HTTP methods the subresource answers itself to their handlers.
	Methods map[string]subresourceHandler
	// OnlyMethods refuses the methods Methods does not list; otherwise they reach the
	// generic handlers, which read the status subresource as "only .status".
	OnlyMethods bool
	// Verbs are advertised in discovery. If nil, the subresource is not: it is for
	// cloudbox's own agents and CLI, not for kubectl.
	Verbs []string
}

// A subresourceHandler serves one request to a subresource. An error is written as
// the answer's Status; nil means the handler has answered.
type subresourceHandler func(s *Server, w http.ResponseWriter, r *http.Request, rt *route) error

// handler returns what serves method on the subresource, or nil when the generic
// handlers do.
func (sub *subresource) handler(method string) subresourceHandler {
	if serve := sub.Methods[method]; serve != nil {
		return serve
	}
	if sub.OnlyMethods {
		return refuseMethod
	}
	return nil
}

func refuseMethod(_ *Server, _ http.ResponseWriter, r *http.Request, rt *route) error {
	return methodNotAllowed(r.Method + " is not allowed on " + rt.sub)
}

// A tableColumn is one column of a kind's server-side Table: its definition, as in
// Kubernetes's TableColumnDefinition, and how a row's cell is read from an object.
type tableColumn struct {
	Name        string
	Type        string // "string", "integer", "date", ...
	Description string
	Priority    int32 // 0 is shown by default; higher only with -o wide
	Cell        func(api.Object) any
}

// statusSubresource is every kind's: GET reads the object, PUT and PATCH write only
// its .status (see merged).
var statusSubresource = subresource{Name: "status", Verbs: []string{"get", "patch", "update"}}

// defaultStrategy is the strategy of a kind with nothing special: its objects are
// stored as clients send them, and it has the status subresource only.
var defaultStrategy = &strategy{}

// strategies holds the registered strategies by resource name.
var strategies = map[string]*strategy{}

// registerStrategy declares the strategy of the kind served as resource. It is called
// from the init function of the kind's strategy_<kind>.go only.
func registerStrategy(resource string, st *strategy) {
	if k, ok := api.LookupKind(resource); !ok || k.Resource != resource {
		panic("apiserver: strategy for unknown resource " + resource)
	}
	if _, dup := strategies[resource]; dup {
		panic("apiserver: strategy registered twice: " + resource)
	}
	strategies[resource] = st
}

// strategyFor returns k's strategy, or defaultStrategy.
func strategyFor(k *api.KindInfo) *strategy {
	if st, ok := strategies[k.Resource]; ok {
		return st
	}
	return defaultStrategy
}

// subresources lists the kind's subresources, status first.
func (st *strategy) subresources() []subresource {
	return append([]subresource{statusSubresource}, st.Subresources...)
}

// subresource returns the kind's subresource called name, or nil.
func (st *strategy) subresource(name string) *subresource {
	for _, sub := range st.subresources() {
		if sub.Name == name {
			return &sub
		}
	}
	return nil
}

// subresourceOwners lists, sorted, the resources that have a subresource called name,
// so that asking another kind for it can say where it is.
func subresourceOwners(name string) []string {
	var owners []string
	for resource, st := range strategies {
		if st.subresource(name) != nil {
			owners = append(owners, resource)
		}
	}
	sort.Strings(owners)
	return owners
}

// checkSubresource refuses a subresource k does not have, naming the kinds that do.
func checkSubresource(k *api.KindInfo, name string) error {
	if name == "" || strategyFor(k).subresource(name) != nil {
		return nil
	}
	if owners := subresourceOwners(name); len(owners) > 0 {
		return notFound(name + " is a subresource of " + strings.Join(owners, ", ") + " only")
	}
	return notFound("unknown subresource " + name + " of " + k.Resource)
}

// startStatus is a PrepareForCreate for a kind whose status the server alone sets: a
// new object starts with status, whatever the client sent. The status is copied as a
// value, so it must hold no slices or maps.
func startStatus(status any) func(*Server, context.Context, api.Object, *undo) error {
	return func(_ *Server, _ context.Context, obj api.Object, _ *undo) error {
		setField(obj, "Status", status)
		return nil
	}
}

// undo records what a write took, so that it can be given back if the write fails.
type undo []func()

func (u undo) run() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}
