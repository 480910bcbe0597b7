package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/tunnel"
)

// Upgrade opens a raw stream on path (an exec, or an agent's tunnel). A refused
// upgrade comes back as the server's *api.Status.
func (c *Client) Upgrade(ctx context.Context, method, path string, query url.Values) (net.Conn, error) {
	conn, err := tunnel.Dial(ctx, c.base, c.tls, c.token, method, path, query)
	var ue *tunnel.UpgradeError
	if errors.As(err, &ue) {
		return nil, statusError(ue.Code, ue.Body)
	}
	return conn, err
}

// LogOptions narrows a pod log.
type LogOptions struct {
	Container string
	Follow    bool
	Previous  bool
	// TailLines, if not nil, starts that many lines from the end.
	TailLines *int
}

// Logs streams a container's log; the caller closes it. With Follow it ends when ctx
// does.
func (c *Client) Logs(ctx context.Context, namespace, pod string, opts LogOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Previous {
		q.Set("previous", "true")
	}
	if opts.TailLines != nil {
		q.Set("tailLines", strconv.Itoa(*opts.TailLines))
	}
	return c.getStream(ctx, path(api.KindOfType[*api.Pod](), namespace, pod, "log"), q)
}

// ConsoleLog reads a VM instance's serial console log from the node that last ran
// it, also once the VM is stopped (instances/NAME/log). It does not follow; only
// opts.TailLines is used.
func (c *Client) ConsoleLog(ctx context.Context, namespace, instance string, opts LogOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if opts.TailLines != nil {
		q.Set("tailLines", strconv.Itoa(*opts.TailLines))
	}
	return c.getStream(ctx, path(api.KindOfType[*api.Instance](), namespace, instance, "log"), q)
}

// getStream sends a GET without a deadline and returns the answer's body, a stream the
// caller reads and closes. A non-2xx answer becomes an *api.Status error.
func (c *Client) getStream(ctx context.Context, p string, q url.Values) (io.ReadCloser, error) {
	resp, err := c.send(ctx, c.stream, http.MethodGet, p, q, "", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, statusError(resp.StatusCode, data)
	}
	return resp.Body, nil
}

// ExecOptions says what to run in a pod's container and where its stdio goes.
type ExecOptions struct {
	Container string
	Command   []string
	TTY       bool
	Stdin     io.Reader // nil: no stdin
	Stdout    io.Writer
	Stderr    io.Writer
	// Resize sends terminal sizes (width, height); may be nil.
	Resize <-chan [2]uint16
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return "command exited with code " + strconv.Itoa(e.Code) }

// Exec runs a command in a pod's container and returns its exit code.
func (c *Client) Exec(ctx context.Context, namespace, pod string, opts ExecOptions) (int, error) {
	q := url.Values{"command": opts.Command}
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	if opts.TTY {
		q.Set("tty", "true")
	}
	if opts.Stdin != nil {
		q.Set("stdin", "true")
	}
	conn, err := c.Upgrade(ctx, http.MethodPost, path(api.KindOfType[*api.Pod](), namespace, pod, "exec"), q)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	fw := tunnel.NewFrameWriter(conn)
	if opts.Stdin != nil {
		go func() {
			_, _ = io.Copy(fw.Channel(tunnel.FrameStdin), opts.Stdin)
			_ = fw.WriteFrame(tunnel.FrameStdinEOF, nil)
		}()
	}
	if opts.Resize != nil {
		go func() {
			for sz := range opts.Resize {
				if fw.WriteFrame(tunnel.FrameResize, tunnel.ResizeFrame(sz[0], sz[1])) != nil {
					return
				}
			}
		}()
	}
	for {
		typ, payload, err := tunnel.ReadFrame(conn)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, errors.New("exec stream ended before the command's exit code arrived: " + err.Error())
		}
		switch typ {
		case tunnel.FrameStdout:
			if opts.Stdout != nil {
				_, _ = opts.Stdout.Write(payload)
			}
		case tunnel.FrameStderr:
			if opts.Stderr != nil {
				_, _ = opts.Stderr.Write(payload)
			}
		case tunnel.FrameExit:
			return tunnel.ParseExit(payload)
		case tunnel.FrameError:
			var st api.Status
			if json.Unmarshal(payload, &st) == nil && st.Message != "" {
				return -1, &st
			}
			return -1, errors.New(string(payload))
		}
	}
}
