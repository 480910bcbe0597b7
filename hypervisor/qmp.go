package hypervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// Timeouts for QMP. go-qemu has none of its own: SocketMonitor.Connect and Run block
// until QEMU answers, which it never does for a second client (QEMU 7.2 serves one QMP
// client at a time) or a wedged QEMU.
var (
	qmpConnectTimeout = 5 * time.Second
	qmpCommandTimeout = 10 * time.Second
)

// errClosed is returned once the VM's QMP connection was dropped by Close.
var errClosed = errors.New("hypervisor: VM handle closed")

// monitor is one QMP connection. go-qemu's SocketMonitor reads replies and events from
// one stream in one goroutine: an undrained event channel blocks every later reply, so
// events are pumped to onEvent all the time. A command that times out leaves its reply
// in flight, where the next command would read it as its own; so a timeout breaks the
// connection instead, and the VM dials a new one on the next command.
type monitor struct {
	sm      *qmp.SocketMonitor
	closed  chan struct{} // closed when the event stream ends: QEMU exited or disconnect
	onceDis sync.Once
	broken  chan struct{}
	onceBrk sync.Once
}

// dialQMP connects to the QMP socket at path and completes the capabilities handshake
// within qmpConnectTimeout (or ctx's deadline). onEvent is called, in order, for every
// event, from one goroutine.
func dialQMP(ctx context.Context, path string, onEvent func(qmp.Event)) (*monitor, error) {
	ctx, cancel := context.WithTimeout(ctx, qmpConnectTimeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	sm, err := qmp.NewSocketMonitor("unix", path, time.Until(dl))
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	connected := make(chan error, 1)
	go func() { connected <- sm.Connect() }()
	select {
	case err := <-connected:
		if err != nil {
			sm.Disconnect()
			return nil, fmt.Errorf("qmp handshake: %w", err)
		}
	case <-ctx.Done():
		// Closing the socket ends Connect's blocked read. QEMU holds a connection
		// without a greeting while another QMP client is attached.
		sm.Disconnect()
		<-connected
		return nil, fmt.Errorf("qmp handshake on %s: no greeting (is another QMP client attached?): %w", path, ctx.Err())
	}
	events, err := sm.Events(context.Background())
	if err != nil {
		sm.Disconnect()
		return nil, fmt.Errorf("qmp events: %w", err)
	}
	m := &monitor{sm: sm, closed: make(chan struct{}), broken: make(chan struct{})}
	go func() {
		defer close(m.closed)
		for e := range events {
			onEvent(e)
		}
	}()
	return m, nil
}

// run sends one command and returns its "return" value. args may be nil.
func (m *monitor) run(ctx context.Context, command string, args any) (json.RawMessage, error) {
	if m.isBroken() {
		return nil, fmt.Errorf("qmp %s: connection closed", command)
	}
	b, err := json.Marshal(qmp.Command{Execute: command, Args: args})
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, qmpCommandTimeout)
		defer cancel()
	}
	type result struct {
		out []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		out, err := m.sm.Run(b)
		ch <- result{out, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, r.err)
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
		}
		if err := json.Unmarshal(r.out, &resp); err != nil {
			return nil, fmt.Errorf("qmp %s: reply: %w", command, err)
		}
		return resp.Return, nil
	case <-ctx.Done():
		m.disconnect()
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
}

func (m *monitor) isBroken() bool {
	select {
	case <-m.broken:
		return true
	case <-m.closed:
		return true
	default:
		return false
	}
}

// disconnect closes the connection; safe to call more than once and concurrently with
// run (whose pending call then fails).
func (m *monitor) disconnect() {
	m.onceBrk.Do(func() { close(m.broken) })
	m.onceDis.Do(func() { m.sm.Disconnect() })
}
