package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

type epEnv struct {
	t   *testing.T
	ctx context.Context
	cl  *client.Client
}

func newEndpointsEnv(t *testing.T) *epEnv {
	cl := newTestAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := NewEndpointsController(testDeps(t, cl))
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &epEnv{t, ctx, cl}
}

// pod creates a pod with an http container port and sets its IP and readiness.
func (e *epEnv) pod(name, ip string, ready bool, labels map[string]string, httpPort int32) *api.Pod {
	e.t.Helper()
	p := &api.Pod{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Pod"}}
	p.Name, p.Namespace, p.Labels = name, "default", labels
	p.Spec.Containers = []api.Container{{Name: "c", Image: "nginx"}}
	if httpPort != 0 {
		p.Spec.Containers[0].Ports = []api.ContainerPort{{Name: "http", ContainerPort: httpPort}}
	}
	o, err := e.cl.Create(e.ctx, p)
	if err != nil {
		e.t.Fatal(err)
	}
	p = o.(*api.Pod)
	e.setStatus(p, ip, ready)
	return p
}

func (e *epEnv) setStatus(p *api.Pod, ip string, ready bool) {
	e.t.Helper()
	podKind, _ := api.LookupKind("pods")
	o, err := e.cl.Get(e.ctx, podKind, p.Namespace, p.Name)
	if err != nil {
		e.t.Fatal(err)
	}
	p = o.(*api.Pod)
	p.Status.Phase, p.Status.PodIP = api.PodRunning, ip
	st := api.ConditionFalse
	if ready {
		st = api.ConditionTrue
	}
	p.Status.Conditions = []api.PodCondition{{Type: api.PodReady, Status: st}}
	if _, err := e.cl.UpdateStatus(e.ctx, p); err != nil {
		e.t.Fatal(err)
	}
}

// waitEndpoints waits until the Endpoints named name reads want (see epString).
func (e *epEnv) waitEndpoints(name, want string) *api.Endpoints {
	e.t.Helper()
	epKind, _ := api.LookupKind("endpoints")
	deadline := time.Now().Add(10 * time.Second)
	got := "<none>"
	for time.Now().Before(deadline) {
		o, err := e.cl.Get(e.ctx, epKind, "default", name)
		if err == nil {
			ep := o.(*api.Endpoints)
			if got = epString(ep); got == want {
				return ep
			}
		} else if !client.IsNotFound(err) {
			e.t.Fatal(err)
		} else if got = "<none>"; want == got {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("endpoints %s: got %q, want %q", name, got, want)
	return nil
}

// epString writes subsets as "ready ips | not ready ips | ports; ...".
func epString(ep *api.Endpoints) string {
	var parts []string
	for _, s := range ep.Subsets {
		var r, n, p []string
		for _, a := range s.Addresses {
			r = append(r, a.IP)
		}
		for _, a := range s.NotReadyAddresses {
			n = append(n, a.IP)
		}
		for _, pt := range s.Ports {
			p = append(p, fmt.Sprintf("%s=%d", pt.Name, pt.Port))
		}
		parts = append(parts, strings.Join(r, ",")+"|"+strings.Join(n, ",")+"|"+strings.Join(p, ","))
	}
	return strings.Join(parts, "; ")
}

func newSvc(name string, sel map[string]string, ports ...api.ServicePort) *api.Service {
	s := &api.Service{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Service"}}
	s.Name, s.Namespace = name, "default"
	s.Spec.Selector = sel
	s.Spec.Ports = ports
	return s
}

func TestEndpointsReadySplitAndChanges(t *testing.T) {
	e := newEndpointsEnv(t)
	web := map[string]string{"app": "web"}
	e.pod("a", "10.244.0.5", true, web, 0)
	e.pod("b", "10.244.0.6", false, web, 0)
	e.pod("other", "10.244.0.7", true, map[string]string{"app": "db"}, 0)
	e.pod("noip", "", true, web, 0)
	o, err := e.cl.Create(e.ctx, newSvc("web", web, api.ServicePort{Port: 80, TargetPort: api.FromInt(8080)}))
	if err != nil {
		t.Fatal(err)
	}
	svc := o.(*api.Service)
	ep := e.waitEndpoints("web", "10.244.0.5|10.244.0.6|=8080")
	if r := ep.ControllerRef(); r == nil || r.Kind != "Service" || r.UID != svc.UID {
		t.Fatalf("owner %+v", ep.OwnerReferences)
	}
	if a := ep.Subsets[0].Addresses[0]; a.TargetRef == nil || a.TargetRef.Name != "a" || a.TargetRef.Kind != "Pod" {
		t.Fatalf("targetRef %+v", a.TargetRef)
	}

	// Readiness changes move the address.
	e.setStatus(&api.Pod{ObjectMeta: api.ObjectMeta{Name: "b", Namespace: "default"}}, "10.244.0.6", true)
	e.waitEndpoints("web", "10.244.0.5,10.244.0.6||=8080")

	// A deleted pod leaves.
	podKind, _ := api.LookupKind("pods")
	if _, err := e.cl.Delete(e.ctx, podKind, "default", "a"); err != nil {
		t.Fatal(err)
	}
	e.waitEndpoints("web", "10.244.0.6||=8080")

	// A selector change picks other pods.
	svcKind, _ := api.LookupKind("services")
	o, _ = e.cl.Get(e.ctx, svcKind, "default", "web")
	svc = o.(*api.Service)
	svc.Spec.Selector = map[string]string{"app": "db"}
	if _, err := e.cl.Update(e.ctx, svc); err != nil {
		t.Fatal(err)
	}
	e.waitEndpoints("web", "10.244.0.7||=8080")

	// The garbage collector is not running here: the owner reference is what
	// removes the Endpoints in a server; the controller does not bring back
	// Endpoints of a deleted Service.
	if _, err := e.cl.Delete(e.ctx, svcKind, "default", "web"); err != nil {
		t.Fatal(err)
	}
	epKind, _ := api.LookupKind("endpoints")
	if _, err := e.cl.Delete(e.ctx, epKind, "default", "web"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	e.waitEndpoints("web", "<none>")
}

func TestEndpointsNamedTargetPort(t *testing.T) {
	e := newEndpointsEnv(t)
	web := map[string]string{"app": "web"}
	e.pod("a", "10.244.0.5", true, web, 8080)
	e.pod("b", "10.244.0.6", true, web, 9090)
	e.pod("c", "10.244.0.7", true, web, 0) // no port named http
	if _, err := e.cl.Create(e.ctx, newSvc("web", web,
		api.ServicePort{Name: "http", Port: 80, TargetPort: api.FromString("http")})); err != nil {
		t.Fatal(err)
	}
	e.waitEndpoints("web", "10.244.0.5||http=8080; 10.244.0.6||http=9090")

	// With a second, numeric port, the pod without the name serves only that one.
	if _, err := e.cl.Create(e.ctx, newSvc("two", web,
		api.ServicePort{Name: "http", Port: 80, TargetPort: api.FromString("http")},
		api.ServicePort{Name: "metrics", Port: 9100})); err != nil {
		t.Fatal(err)
	}
	e.waitEndpoints("two", "10.244.0.5||http=8080,metrics=9100; 10.244.0.6||http=9090,metrics=9100; 10.244.0.7||metrics=9100")
}
