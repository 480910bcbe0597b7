package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// probeKind is which of a container's probes a result is from.
type probeKind int

const (
	probeStartup probeKind = iota
	probeLiveness
	probeReadiness
)

func (k probeKind) String() string {
	return [...]string{"startup", "liveness", "readiness"}[k]
}

// title is the kind as the start of a sentence, for events.
func (k probeKind) title() string {
	return [...]string{"Startup", "Liveness", "Readiness"}[k]
}

// probeResult is a probe's outcome changing: startup succeeded or failed for good,
// liveness failed, readiness flipped.
type probeResult struct {
	container string
	taskID    string
	kind      probeKind
	ok        bool
	msg       string
}

// probeTarget is what the httpGet and tcpSocket actions of one container talk to.
type probeTarget struct {
	podUID      string
	host        string // the pod's address: its IP, or loopback
	hostNetwork bool
	ports       []api.ContainerPort
	// dialPod opens a connection inside the pod's network namespace; nil when the
	// driver cannot, or when the host reaches the address directly.
	dialPod func(ctx context.Context, network, addr string) (net.Conn, error)
}

// probeTarget finds where a pod's probes and hooks connect: 127.0.0.1 with
// hostNetwork, the pod's IP when the pod network gives one, else 127.0.0.1 inside the
// pod's network namespace through the driver's PodDialer (until the network issue
// lands a pod has loopback only, which the host cannot reach).
func (w *podWorker) probeTarget(p *api.Pod, c *api.Container) probeTarget {
	t := probeTarget{podUID: p.UID, hostNetwork: p.Spec.HostNetwork, ports: c.Ports}
	switch ip := w.a.podIP(p); {
	case p.Spec.HostNetwork:
		t.host = "127.0.0.1"
	case ip != "":
		t.host = ip
	default:
		t.host = "127.0.0.1"
		if d, ok := w.driver.(PodDialer); ok {
			uid := p.UID
			t.dialPod = func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialPod(ctx, uid, network, addr)
			}
		}
	}
	return t
}

// dialer returns how to reach host: inside the pod's namespace when host is the
// pod's own loopback, else from the host.
func (t probeTarget) dialer(explicitHost bool) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	if !explicitHost && !t.hostNetwork && t.dialPod != nil {
		return t.dialPod, nil
	}
	if !explicitHost && !t.hostNetwork && t.host == "127.0.0.1" {
		return nil, errors.New("the pod has no IP address and the driver cannot connect inside its network namespace")
	}
	var d net.Dialer
	return d.DialContext, nil
}

// port resolves a probe's port, by number or by the name of a container port.
func (t probeTarget) port(p api.IntOrString) (int, error) {
	if !p.IsStr {
		return int(p.IntVal), nil
	}
	for _, cp := range t.ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q is not a port of the container", p.StrVal)
}

// runAction runs an exec, httpGet or tcpSocket action against a task, within timeout.
// It returns nil when the action succeeded.
func (w *podWorker) runAction(ctx context.Context, h *api.Handler, taskID string, t probeTarget, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	switch {
	case h.Exec != nil:
		out := &limitedBuffer{max: 10 << 10}
		code, err := w.driver.Exec(ctx, taskID, ExecOptions{Command: h.Exec.Command, Stdout: out, Stderr: out})
		if err != nil {
			return fmt.Errorf("exec %q: %w", strings.Join(h.Exec.Command, " "), err)
		}
		if code != 0 {
			msg := strings.TrimSpace(out.String())
			if msg != "" {
				return fmt.Errorf("exec %q exited with %d: %s", strings.Join(h.Exec.Command, " "), code, msg)
			}
			return fmt.Errorf("exec %q exited with %d", strings.Join(h.Exec.Command, " "), code)
		}
		return nil
	case h.HTTPGet != nil:
		return httpAction(ctx, h.HTTPGet, t)
	case h.TCPSocket != nil:
		port, err := t.port(h.TCPSocket.Port)
		if err != nil {
			return err
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = t.host
		}
		dial, err := t.dialer(h.TCPSocket.Host != "")
		if err != nil {
			return err
		}
		conn, err := dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	}
	return errors.New("the action has no exec, httpGet or tcpSocket")
}

func httpAction(ctx context.Context, g *api.HTTPGetAction, t probeTarget) error {
	port, err := t.port(g.Port)
	if err != nil {
		return err
	}
	host := g.Host
	if host == "" {
		host = t.host
	}
	dial, err := t.dialer(g.Host != "")
	if err != nil {
		return err
	}
	scheme := strings.ToLower(g.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "cloudbox-probe")
	req.Header.Set("Accept", "*/*")
	for _, hd := range g.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	// Like the kubelet: no certificate check (the pod's certificate names a service,
	// not the address probed), no connection kept.
	tr := &http.Transport{
		DialContext:       dial,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not authenticate the pod
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it and drops the rest.
type limitedBuffer struct {
	max int
	b   []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

// startProbes starts the probes of a task that just started (or was adopted): the
// startup probe first, then liveness and readiness once it succeeds (at once when
// there is none). They end when ctx does.
func (w *podWorker) startProbes(ctx context.Context, p *api.Pod, c *api.Container, taskID string) {
	t := w.probeTarget(p, c)
	if c.StartupProbe != nil {
		w.a.spawn(func() { w.probeLoop(ctx, probeStartup, c.Name, taskID, c.StartupProbe, t) })
		return
	}
	w.startRunningProbes(ctx, p, c, taskID)
}

// startRunningProbes starts the liveness and readiness probes, which the startup
// probe gates.
func (w *podWorker) startRunningProbes(ctx context.Context, p *api.Pod, c *api.Container, taskID string) {
	t := w.probeTarget(p, c)
	if c.LivenessProbe != nil {
		w.a.spawn(func() { w.probeLoop(ctx, probeLiveness, c.Name, taskID, c.LivenessProbe, t) })
	}
	if c.ReadinessProbe != nil {
		w.a.spawn(func() { w.probeLoop(ctx, probeReadiness, c.Name, taskID, c.ReadinessProbe, t) })
	}
}

// probeLoop runs one probe of one task: after initialDelaySeconds, every
// periodSeconds, each try bounded by timeoutSeconds. Once successThreshold successes
// or failureThreshold failures in a row decide a result, it is posted to the worker
// if it is the first or differs from the last. Startup stops once decided; liveness
// stops at its failure, since the task is then killed and a new task gets new probes.
func (w *podWorker) probeLoop(ctx context.Context, kind probeKind, name, taskID string, pr *api.Probe, t probeTarget) {
	clk := w.a.cfg.Clock
	if !clock.Sleep(clk, time.Duration(pr.InitialDelaySeconds)*time.Second, ctx.Done()) {
		return
	}
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	success, failure := max(pr.SuccessThreshold, 1), max(pr.FailureThreshold, 1)
	var okRun, failRun int32
	var posted *bool
	decide := func(ok bool, msg string) {
		if posted == nil || *posted != ok {
			posted = &ok
			w.post(probeResult{container: name, taskID: taskID, kind: kind, ok: ok, msg: msg})
		}
	}
	for {
		err := w.runAction(ctx, &pr.Handler, taskID, t, timeout)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			okRun, failRun = okRun+1, 0
		} else {
			okRun, failRun = 0, failRun+1
			w.log.Debug("probe failed", zap.String("container", name), zap.Stringer("probe", kind), zap.Error(err))
			w.event(api.EventWarning, "Unhealthy", "%s probe failed: %v", kind.title(), err)
		}
		switch {
		case err == nil && okRun >= success:
			decide(true, "")
			if kind == probeStartup {
				return
			}
		case err != nil && failRun >= failure:
			decide(false, err.Error())
			if kind != probeReadiness {
				return
			}
		}
		if !clock.Sleep(clk, period, ctx.Done()) {
			return
		}
	}
}
