package apiserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/tunnel"
)

// nodeTunnel takes an agent's tunnel: the agent dials in, and logs and exec streams
// are opened back to it over this one connection (no master → worker dialling).
func (s *Server) nodeTunnel(w http.ResponseWriter, r *http.Request, rt *route) error {
	if !tunnel.IsUpgrade(r) {
		return badRequest("the tunnel needs 'Upgrade: " + tunnel.Protocol + "'")
	}
	conn, err := tunnel.Accept(w, r)
	if err != nil {
		return err
	}
	s.log.Info("agent tunnel connected", zap.String("node", rt.name))
	_ = s.cfg.Tunnels.Serve(rt.name, conn)
	s.log.Info("agent tunnel closed", zap.String("node", rt.name))
	return nil
}

// streamRequest resolves the pod and container a log or exec request is about.
func (s *Server) streamRequest(r *http.Request, rt *route, op string) (*tunnel.Request, string, error) {
	pod, err := storeGet[*api.Pod](r.Context(), s.cfg.Store, rt.namespace, rt.name)
	if err != nil {
		return nil, "", err
	}
	if pod.Spec.NodeName == "" {
		return nil, "", badRequest(fmt.Sprintf("pod %s is not scheduled to a node yet", rt.name))
	}
	q := r.URL.Query()
	container := q.Get("container")
	var names []string
	for _, c := range append(append([]api.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		names = append(names, c.Name)
		if container == c.Name {
			names = nil
			break
		}
	}
	switch {
	case container == "" && len(pod.Spec.Containers) == 1:
		container = pod.Spec.Containers[0].Name
	case container == "":
		return nil, "", badRequest(fmt.Sprintf("pod %s has several containers: choose one of %s", rt.name, strings.Join(names, ", ")))
	case names != nil:
		return nil, "", badRequest(fmt.Sprintf("container %q is not in pod %s (it has %s)", container, rt.name, strings.Join(names, ", ")))
	}
	req := &tunnel.Request{Op: op, Namespace: rt.namespace, Pod: rt.name, Container: container}
	req.Follow = q.Get("follow") == "true" || q.Get("follow") == "1"
	req.Previous = q.Get("previous") == "true" || q.Get("previous") == "1"
	if req.Tail, err = tailLines(q.Get("tailLines")); err != nil {
		return nil, "", err
	}
	req.Command = q["command"]
	req.TTY = q.Get("tty") == "true" || q.Get("tty") == "1"
	req.Stdin = q.Get("stdin") == "true" || q.Get("stdin") == "1"
	return req, pod.Spec.NodeName, nil
}

func (s *Server) openStream(r *http.Request, node string, req *tunnel.Request) (io.ReadWriteCloser, error) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.TunnelWait)
	defer cancel()
	stream, err := s.cfg.Tunnels.Open(ctx, node, req)
	if errors.Is(err, tunnel.ErrNoTunnel) {
		return nil, newStatus(http.StatusServiceUnavailable, "ServiceUnavailable", err.Error())
	}
	return stream, err
}

// tailLines reads the tailLines parameter; absent is -1, every line.
func tailLines(s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badRequest("tailLines must be a non-negative integer")
	}
	return n, nil
}

// podLog streams a container's log from its node's agent.
func (s *Server) podLog(w http.ResponseWriter, r *http.Request, rt *route) error {
	req, node, err := s.streamRequest(r, rt, "logs")
	if err != nil {
		return err
	}
	return s.proxyLog(w, r, node, req)
}

// instanceLog streams a VM's serial console log from the node that last ran it,
// which keeps it while the instance exists, so a stopped VM's log can still be read
// (Nova's os-getConsoleOutput). The node finds it by the instance's UID.
func (s *Server) instanceLog(w http.ResponseWriter, r *http.Request, rt *route) error {
	inst, err := storeGet[*api.Instance](r.Context(), s.cfg.Store, rt.namespace, rt.name)
	if err != nil {
		return err
	}
	if inst.Status.NodeName == "" {
		return badRequest(fmt.Sprintf("instance %s has no console log yet (status %s): no node has run it", rt.name, inst.Status.State))
	}
	req := &tunnel.Request{Op: "logs", Namespace: rt.namespace, Pod: api.InstancePodName(rt.name), Container: "vm", Ref: inst.UID}
	if req.Tail, err = tailLines(r.URL.Query().Get("tailLines")); err != nil {
		return err
	}
	return s.proxyLog(w, r, inst.Status.NodeName, req)
}

// proxyLog sends a logs request to a node's agent and copies its answer.
func (s *Server) proxyLog(w http.ResponseWriter, r *http.Request, node string, req *tunnel.Request) error {
	stream, err := s.openStream(r, node, req)
	if err != nil {
		return err
	}
	defer stream.Close()
	// The client going away (a followed log it stopped reading) ends the stream.
	stop := context.AfterFunc(r.Context(), func() { stream.Close() })
	defer stop()
	br := bufio.NewReader(stream)
	if err := tunnel.ReadAnswer(br); err != nil {
		return badRequest(err.Error())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	copyFlushing(w, br)
	return nil
}

// copyFlushing copies an agent's answer to the client as it comes, flushing each
// piece so a followed log or a pull's progress is not held in a buffer.
func copyFlushing(w http.ResponseWriter, r io.Reader) {
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// podExec splices the client's upgraded connection to a stream to the agent; the
// frames (stdin, stdout, stderr, resize, exit) pass through unchanged.
func (s *Server) podExec(w http.ResponseWriter, r *http.Request, rt *route) error {
	if !tunnel.IsUpgrade(r) {
		return badRequest("exec needs 'Upgrade: " + tunnel.Protocol + "'")
	}
	req, node, err := s.streamRequest(r, rt, "exec")
	if err != nil {
		return err
	}
	if len(req.Command) == 0 {
		return &api.FieldError{Field: "command", Reason: "required: name the command to run"}
	}
	stream, err := s.openStream(r, node, req)
	if err != nil {
		return err
	}
	defer stream.Close()
	conn, err := tunnel.Accept(w, r)
	if err != nil {
		return err
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, stream); done <- struct{}{} }()
	<-done
	return nil
}

// nodeImages acts on a node's image store through its agent:
//
//	GET    .../nodes/N/images                      list (JSON)
//	POST   .../nodes/N/images?action=pull&ref=R    pull, with JSON-lines progress
//	POST   .../nodes/N/images?action=import        import the tarball in the body
//	POST   .../nodes/N/images?action=prune         remove unused layers
//	DELETE .../nodes/N/images?ref=R                remove an image
func (s *Server) nodeImages(w http.ResponseWriter, r *http.Request, rt *route) error {
	q := r.URL.Query()
	req := &tunnel.Request{Op: "images", Ref: q.Get("ref")}
	switch r.Method {
	case http.MethodGet:
		req.Action = "list"
	case http.MethodDelete:
		req.Action = "remove"
	case http.MethodPost:
		req.Action = q.Get("action")
		switch req.Action {
		case "pull", "import", "prune":
		default:
			return badRequest("action must be pull, import or prune")
		}
	default:
		return methodNotAllowed(r.Method + " is not allowed on images")
	}
	if (req.Action == "pull" || req.Action == "remove") && req.Ref == "" {
		return &api.FieldError{Field: "ref", Reason: "required: name the image"}
	}
	if _, err := s.cfg.Store.Get(r.Context(), rt.kind, "", rt.name); err != nil {
		return err
	}
	stream, err := s.openStream(r, rt.name, req)
	if err != nil {
		return err
	}
	defer stream.Close()
	stop := context.AfterFunc(r.Context(), func() { stream.Close() })
	defer stop()
	if req.Action == "import" {
		if _, err := io.Copy(stream, r.Body); err != nil {
			return badRequest("reading the upload: " + err.Error())
		}
	}
	// Closing a yamux stream closes our half only: it marks the end of the body, and
	// the answer still comes back.
	_ = stream.Close()
	br := bufio.NewReader(stream)
	if err := tunnel.ReadAnswer(br); err != nil {
		return badRequest(err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	copyFlushing(w, br)
	return nil
}
