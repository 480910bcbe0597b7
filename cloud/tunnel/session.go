package tunnel

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"
)

// Request is the first line of every stream the API server opens to an agent.
type Request struct {
	Op        string   `json:"op"` // "logs", "exec" or "images"
	Namespace string   `json:"namespace"`
	Pod       string   `json:"pod"`
	Container string   `json:"container"`
	Follow    bool     `json:"follow,omitempty"`
	Previous  bool     `json:"previous,omitempty"`
	Tail      int      `json:"tail"` // negative: all
	Command   []string `json:"command,omitempty"`
	TTY       bool     `json:"tty,omitempty"`
	Stdin     bool     `json:"stdin,omitempty"`
	// Action and Ref are for "images": pull, import, list, remove or prune. For
	// "logs", a Ref is the UID of the VM instance whose console log is asked for
	// (kept on the node while the instance exists, running or not).
	Action string `json:"action,omitempty"`
	Ref    string `json:"ref,omitempty"`
}

// ExecIO is the stdio of an exec, as the backend sees it.
type ExecIO struct {
	Stdin  io.Reader // nil unless requested
	Stdout io.Writer
	Stderr io.Writer
	Resize <-chan [2]uint16 // width, height
}

// Backend is what an agent offers over its tunnel.
type Backend interface {
	Logs(ctx context.Context, req *Request, w io.Writer) error
	Exec(ctx context.Context, req *Request, stdio ExecIO) (int, error)
	// Images acts on the node's image store; body is the upload of an import.
	Images(ctx context.Context, req *Request, body io.Reader, w io.Writer) error
}

// Registry holds the tunnels of the connected agents, on the API server. It is safe
// for concurrent use.
type Registry struct {
	mu       sync.Mutex
	sessions map[string]*yamux.Session
	// changed is closed and replaced whenever a tunnel connects.
	changed chan struct{}
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{sessions: map[string]*yamux.Session{}, changed: make(chan struct{})}
}

// Serve keeps node's tunnel over conn until it closes; a newer tunnel from the same
// node replaces an older one.
func (r *Registry) Serve(node string, conn net.Conn) error {
	sess, err := yamux.Client(conn, yamuxConfig())
	if err != nil {
		conn.Close()
		return err
	}
	r.mu.Lock()
	if old := r.sessions[node]; old != nil {
		old.Close()
	}
	r.sessions[node] = sess
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	<-sess.CloseChan()
	r.mu.Lock()
	if r.sessions[node] == sess {
		delete(r.sessions, node)
	}
	r.mu.Unlock()
	return nil
}

// ErrNoTunnel means the node's agent is not connected.
var ErrNoTunnel = errors.New("the node's agent is not connected")

// Open starts a stream to node's agent and sends req as its first line. If the
// node's tunnel is not up, it waits for it until ctx ends (an agent that just
// restarted reconnects within moments).
func (r *Registry) Open(ctx context.Context, node string, req *Request) (net.Conn, error) {
	var sess *yamux.Session
	for {
		r.mu.Lock()
		sess = r.sessions[node]
		changed := r.changed
		r.mu.Unlock()
		if sess != nil && !sess.IsClosed() {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("node %s: %w", node, ErrNoTunnel)
		}
	}
	stream, err := sess.Open()
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node, err)
	}
	if err := json.NewEncoder(stream).Encode(req); err != nil {
		stream.Close()
		return nil, err
	}
	return stream, nil
}

func yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	c.KeepAliveInterval = 20 * time.Second
	return c
}

// Connect keeps a tunnel from this agent to the API server open until ctx ends,
// redialling with back-off, and serves the streams the server opens on backend.
func Connect(ctx context.Context, dial func(context.Context) (net.Conn, error), backend Backend, log *zap.Logger) {
	if log == nil {
		log = zap.NewNop()
	}
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := dial(ctx)
		if err == nil {
			backoff = 200 * time.Millisecond
			err = serveSession(ctx, conn, backend, log)
		}
		if ctx.Err() != nil {
			return
		}
		log.Debug("tunnel down; redialling", zap.Error(err), zap.Duration("in", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func serveSession(ctx context.Context, conn net.Conn, backend Backend, log *zap.Logger) error {
	sess, err := yamux.Server(conn, yamuxConfig())
	if err != nil {
		conn.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	defer sess.Close()
	for {
		stream, err := sess.Accept()
		if err != nil {
			return err
		}
		go serveStream(ctx, stream, backend, log)
	}
}

// Answers before the data of a logs stream: "OK\n" or "ERR message\n".
const (
	answerOK  = "OK"
	answerErr = "ERR "
)

func serveStream(ctx context.Context, stream net.Conn, backend Backend, log *zap.Logger) {
	defer stream.Close()
	br := bufio.NewReader(stream)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		fmt.Fprintf(stream, "%sbad request: %v\n", answerErr, err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	switch req.Op {
	case "logs":
		// The peer closing the stream (a client that stopped following) ends the copy.
		go func() { _, _ = io.Copy(io.Discard, br); cancel() }()
		w := &answerWriter{w: stream}
		if err := backend.Logs(ctx, &req, w); err != nil && !w.started {
			fmt.Fprintf(stream, "%s%s\n", answerErr, oneLine(err.Error()))
		}
	case "exec":
		serveExec(ctx, cancel, &req, br, stream, backend, log)
	case "images":
		// The request body (an import's tarball) follows the first line; the API
		// server half-closes nothing, so the body is framed by the stream's end.
		w := &answerWriter{w: stream}
		err := backend.Images(ctx, &req, br, w)
		if err != nil && !w.started {
			fmt.Fprintf(stream, "%s%s\n", answerErr, oneLine(err.Error()))
		} else if !w.started {
			_, _ = w.Write(nil)
		}
	default:
		fmt.Fprintf(stream, "%sunknown op %q\n", answerErr, req.Op)
	}
}

// answerWriter sends "OK" before the first byte of log data, so an error found
// before any output can still be reported as an error.
type answerWriter struct {
	w       io.Writer
	started bool
}

func (a *answerWriter) Write(p []byte) (int, error) {
	if !a.started {
		a.started = true
		if _, err := io.WriteString(a.w, answerOK+"\n"); err != nil {
			return 0, err
		}
	}
	return a.w.Write(p)
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// ReadAnswer reads the first line of a logs stream: nil for OK, else the agent's
// error.
func ReadAnswer(br *bufio.Reader) error {
	line, err := br.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && line == "" {
			return nil // an empty log: the agent closed without output
		}
		return err
	}
	line = strings.TrimSuffix(line, "\n")
	if line == answerOK {
		return nil
	}
	return errors.New(strings.TrimPrefix(line, answerErr))
}

// serveExec runs one exec: frames from the peer feed stdin and resizes; the peer
// closing the stream cancels the exec.
func serveExec(ctx context.Context, cancel context.CancelFunc, req *Request, br *bufio.Reader, stream net.Conn, backend Backend, log *zap.Logger) {
	fw := NewFrameWriter(stream)
	var stdin *io.PipeReader
	var stdinW *io.PipeWriter
	if req.Stdin {
		stdin, stdinW = io.Pipe()
	}
	resize := make(chan [2]uint16, 4)
	go func() {
		defer func() {
			if stdinW != nil {
				stdinW.Close()
			}
		}()
		for {
			typ, payload, err := ReadFrame(br)
			if err != nil {
				cancel()
				return
			}
			switch typ {
			case FrameStdin:
				if stdinW != nil {
					if _, err := stdinW.Write(payload); err != nil {
						return
					}
				}
			case FrameStdinEOF:
				if stdinW != nil {
					stdinW.Close()
				}
			case FrameResize:
				if w, h, err := ParseResize(payload); err == nil {
					select {
					case resize <- [2]uint16{w, h}:
					default: // a newer size will follow
					}
				}
			}
		}
	}()
	stdio := ExecIO{Stdout: fw.Channel(FrameStdout), Stderr: fw.Channel(FrameStderr), Resize: resize}
	if stdin != nil {
		stdio.Stdin = stdin
	}
	code, err := backend.Exec(ctx, req, stdio)
	if err != nil {
		log.Debug("exec failed", zap.String("pod", req.Namespace+"/"+req.Pod), zap.Error(err))
		_ = fw.WriteFrame(FrameError, []byte(err.Error()))
		return
	}
	_ = fw.WriteFrame(FrameExit, ExitFrame(code))
}
