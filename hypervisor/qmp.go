package hypervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// Timeouts for QMP: QEMU answers a second client only once the first one leaves (7.2
// serves one at a time), and a wedged QEMU never answers.
var (
	qmpConnectTimeout = 5 * time.Second
	qmpCommandTimeout = 10 * time.Second
)

// errClosed is returned once the VM's QMP connection was dropped by Close.
var errClosed = errors.New("hypervisor: VM handle closed")

// QMPError is an error reply from QEMU.
type QMPError struct {
	Command string
	Class   string // e.g. "GenericError", "DeviceNotFound", "CommandNotFound"
	Desc    string
}

func (e *QMPError) Error() string { return "qmp " + e.Command + ": " + e.Class + ": " + e.Desc }

// monitor is one QMP connection, speaking the wire protocol itself with go-qemu's
// qmp.Command and qmp.Event types. go-qemu's SocketMonitor is not used because, as seen
// with the pinned version: Connect and Run have no timeout; a reply waits behind every
// undrained event; its bufio.Scanner drops the connection on a line over 64 KiB; and Run
// returns the scanner's buffer, which the reader goroutine overwrites with the next
// message (the race detector reports it when an event follows a reply). Here every
// command carries an id, so a reply that comes after its command timed out is dropped
// instead of being taken for the next command's.
type monitor struct {
	conn    net.Conn
	onEvent func(qmp.Event)
	closed  chan struct{} // closed when the reader stops: QEMU exited or disconnect
	wmu     sync.Mutex    // one command on the wire at a time

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan reply
	once    sync.Once
}

type reply struct {
	ret json.RawMessage
	err *QMPError
}

// message is anything QEMU sends after the greeting: an event or a reply.
type message struct {
	Event     string         `json:"event"`
	Data      map[string]any `json:"data"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
	ID     *uint64         `json:"id"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// dialQMP connects to the QMP socket at path and completes the capabilities handshake
// within qmpConnectTimeout (or ctx's deadline). onEvent is called in order for every
// event, from the reader goroutine: it must not block.
func dialQMP(ctx context.Context, path string, onEvent func(qmp.Event)) (*monitor, error) {
	ctx, cancel := context.WithTimeout(ctx, qmpConnectTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	// A context cancelled early (not only its deadline) must end the handshake too.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	dec := json.NewDecoder(conn)
	fail := func(step string, err error) (*monitor, error) {
		conn.Close()
		// The socket deadline is ctx's, and may fire a moment before ctx notices.
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			cause := ctx.Err()
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			// QEMU holds a second client's connection without a greeting.
			return nil, fmt.Errorf("qmp %s on %s (is another QMP client attached?): %w", step, path, cause)
		}
		return nil, fmt.Errorf("qmp %s on %s: %w", step, path, err)
	}
	var greeting struct {
		QMP *struct {
			Version qmp.Version `json:"version"`
		} `json:"QMP"`
	}
	if err := dec.Decode(&greeting); err != nil {
		return fail("greeting", err)
	}
	if greeting.QMP == nil {
		return fail("greeting", errors.New("not a QMP greeting"))
	}
	if err := json.NewEncoder(conn).Encode(qmp.Command{Execute: "qmp_capabilities"}); err != nil {
		return fail("handshake", err)
	}
	var m message
	if err := dec.Decode(&m); err != nil {
		return fail("handshake", err)
	}
	if m.Error != nil {
		return fail("handshake", errors.New(m.Error.Desc))
	}
	if !stop() {
		return fail("handshake", ctx.Err())
	}
	conn.SetDeadline(time.Time{})
	mon := &monitor{conn: conn, onEvent: onEvent, closed: make(chan struct{}), pending: map[uint64]chan reply{}}
	go mon.read(dec)
	return mon, nil
}

// read dispatches events and replies until the connection ends.
func (m *monitor) read(dec *json.Decoder) {
	defer close(m.closed)
	defer m.conn.Close()
	for {
		var msg message
		if err := dec.Decode(&msg); err != nil {
			return
		}
		if msg.Event != "" {
			e := qmp.Event{Event: msg.Event, Data: msg.Data}
			e.Timestamp.Seconds, e.Timestamp.Microseconds = msg.Timestamp.Seconds, msg.Timestamp.Microseconds
			m.onEvent(e)
			continue
		}
		if msg.ID == nil {
			continue // only for input QEMU could not parse; we never send such
		}
		m.mu.Lock()
		ch := m.pending[*msg.ID]
		delete(m.pending, *msg.ID)
		m.mu.Unlock()
		if ch == nil {
			continue // its command timed out
		}
		r := reply{ret: msg.Return}
		if msg.Error != nil {
			r.err = &QMPError{Class: msg.Error.Class, Desc: msg.Error.Desc}
		}
		ch <- r // buffered
	}
}

// run sends one command and returns its "return" value. args may be nil. Without a
// deadline in ctx, qmpCommandTimeout applies.
func (m *monitor) run(ctx context.Context, command string, args any) (json.RawMessage, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, qmpCommandTimeout)
		defer cancel()
	}
	ch := make(chan reply, 1)
	m.mu.Lock()
	m.nextID++
	id := m.nextID
	m.pending[id] = ch
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.pending, id)
		m.mu.Unlock()
	}()
	b, err := json.Marshal(struct {
		Execute string `json:"execute"`
		Args    any    `json:"arguments,omitempty"`
		ID      uint64 `json:"id"`
	}{command, args, id})
	if err != nil {
		return nil, err
	}
	m.wmu.Lock()
	dl, _ := ctx.Deadline()
	m.conn.SetWriteDeadline(dl)
	_, err = m.conn.Write(append(b, '\n'))
	m.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			r.err.Command = command
			return nil, r.err
		}
		return r.ret, nil
	case <-m.closed:
		return nil, fmt.Errorf("qmp %s: connection closed", command)
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
}

func (m *monitor) isBroken() bool {
	select {
	case <-m.closed:
		return true
	default:
		return false
	}
}

// disconnect closes the connection; safe to call more than once and concurrently with
// run (whose pending call then fails).
func (m *monitor) disconnect() {
	m.once.Do(func() { m.conn.Close() })
}
