package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/cloud/agent/vmdriver"
	"github.com/cloudbox/cloudbox/cloud/tunnel"
	"github.com/cloudbox/cloudbox/runtime/image"
)

// nodeBackend answers what the API server asks of this node over the agent's
// tunnel: logs and exec through the agent, image operations on the node's store.
type nodeBackend struct {
	agent  *agent.Agent
	images *image.Store     // nil when the node runs no containers
	vms    *vmdriver.Driver // nil when the node runs no VMs
}

var _ tunnel.Backend = nodeBackend{}

func (b nodeBackend) Logs(ctx context.Context, req *tunnel.Request, w io.Writer) error {
	if req.Ref != "" {
		if b.vms == nil {
			return fmt.Errorf("this node runs no VMs, so it keeps no console logs")
		}
		return b.vms.ConsoleLog(req.Ref, req.Tail, w)
	}
	return b.agent.Logs(ctx, req.Namespace, req.Pod, req.Container, agent.LogOptions{Follow: req.Follow, Tail: req.Tail, Previous: req.Previous}, w)
}

func (b nodeBackend) Exec(ctx context.Context, req *tunnel.Request, stdio tunnel.ExecIO) (int, error) {
	resize := make(chan agent.TerminalSize, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sz, ok := <-stdio.Resize:
				if !ok {
					return
				}
				// Keep the newest size: drop a stale one still queued.
				next := agent.TerminalSize{Width: sz[0], Height: sz[1]}
				select {
				case resize <- next:
				default:
					select {
					case <-resize:
					default:
					}
					resize <- next
				}
			}
		}
	}()
	return b.agent.Exec(ctx, req.Namespace, req.Pod, req.Container, agent.ExecOptions{
		Command: req.Command, TTY: req.TTY, Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr, Resize: resize,
	})
}

// PullEvent is one line of a pull's answer: progress, then the image or an error
// (once progress has been sent, an error can only come as a line).
type PullEvent struct {
	Progress *image.Progress `json:"progress,omitempty"`
	Image    *image.Image    `json:"image,omitempty"`
	Error    string          `json:"error,omitempty"`
}

func (b nodeBackend) Images(ctx context.Context, req *tunnel.Request, body io.Reader, w io.Writer) error {
	if b.images == nil {
		return fmt.Errorf("this node runs no containers, so it keeps no images")
	}
	enc := json.NewEncoder(w)
	switch req.Action {
	case "list":
		return enc.Encode(b.images.List())
	case "pull":
		var mu sync.Mutex // layers report progress from several goroutines
		sent := false
		img, err := b.images.Pull(ctx, req.Ref, image.PullAlways, func(p image.Progress) {
			mu.Lock()
			defer mu.Unlock()
			sent = true
			_ = enc.Encode(PullEvent{Progress: &p})
		})
		mu.Lock()
		defer mu.Unlock()
		if err != nil && sent {
			return enc.Encode(PullEvent{Error: err.Error()})
		}
		if err != nil {
			return err
		}
		return enc.Encode(PullEvent{Image: img})
	case "import":
		imgs, err := b.images.Import(ctx, body)
		if err != nil {
			return err
		}
		return enc.Encode(imgs)
	case "remove":
		if err := b.images.Remove(req.Ref); err != nil {
			return err
		}
		return enc.Encode(map[string]string{"removed": req.Ref})
	case "prune":
		freed, err := b.images.Prune()
		if err != nil {
			return err
		}
		return enc.Encode(map[string]int64{"freedBytes": freed})
	}
	return fmt.Errorf("unknown image action %q", req.Action)
}
