package hypervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// fakeQMP is a QMP server at the package border: it greets (unless silent), accepts
// qmp_capabilities, sends n events before each reply, answers "slow" after 500 ms and
// "hang" never. Replies echo the command's name and id.
func fakeQMP(t *testing.T, silent bool, events int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			if silent {
				continue
			}
			go func() {
				fmt.Fprintln(c, `{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}}`)
				dec := json.NewDecoder(c)
				for {
					var cmd struct {
						Execute string          `json:"execute"`
						ID      json.RawMessage `json:"id"`
					}
					if dec.Decode(&cmd) != nil {
						return
					}
					switch cmd.Execute {
					case "hang":
						continue
					case "slow":
						time.Sleep(500 * time.Millisecond)
					case "qmp_capabilities":
						fmt.Fprintln(c, `{"return": {}}`)
						continue
					}
					for i := 0; i < events; i++ {
						fmt.Fprintf(c, `{"event": "TICK", "data": {"i": %d}, "timestamp": {"seconds": 1, "microseconds": 2}}`+"\n", i)
					}
					if cmd.Execute == "fail" {
						fmt.Fprintf(c, `{"error": {"class": "DeviceNotFound", "desc": "Device 'x' not found"}, "id": %s}`+"\n", cmd.ID)
						continue
					}
					fmt.Fprintf(c, `{"return": {"cmd": %q}, "id": %s}`+"\n", cmd.Execute, cmd.ID)
				}
			}()
		}
	}()
	return path
}

func shortQMPTimeouts(t *testing.T) {
	oc, oq := qmpConnectTimeout, qmpCommandTimeout
	qmpConnectTimeout, qmpCommandTimeout = 300*time.Millisecond, 300*time.Millisecond
	t.Cleanup(func() { qmpConnectTimeout, qmpCommandTimeout = oc, oq })
}

// QEMU 7.2 accepts a second QMP client but never greets it; go-qemu's Connect would
// wait forever.
func TestQMPHandshakeTimeout(t *testing.T) {
	shortQMPTimeouts(t)
	path := fakeQMP(t, true, 0)
	start := time.Now()
	_, err := dialQMP(context.Background(), path, func(qmp.Event) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dialQMP = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dialQMP took %s", d)
	}
}

// A reply that comes after its command timed out must not be taken for the next
// command's.
func TestQMPLateReplyDropped(t *testing.T) {
	shortQMPTimeouts(t)
	m, err := dialQMP(context.Background(), fakeQMP(t, false, 0), func(qmp.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	defer m.disconnect()
	if _, err := m.run(context.Background(), "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run(slow) = %v, want a deadline error", err)
	}
	out, err := m.run(context.Background(), "query-status", nil)
	if err != nil || string(out) != `{"cmd": "query-status"}` {
		t.Fatalf("run(query-status) after a timeout = %s, %v", out, err)
	}
	_, err = m.run(context.Background(), "fail", nil)
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "DeviceNotFound" || qe.Command != "fail" {
		t.Errorf("run(fail) = %v, want a DeviceNotFound QMPError", err)
	}
}

// Events arriving before a reply must not block it (go-qemu blocks the reply stream
// until every event is taken).
func TestQMPEventsDoNotBlockReplies(t *testing.T) {
	var n atomic.Int32
	m, err := dialQMP(context.Background(), fakeQMP(t, false, 500), func(e qmp.Event) {
		if e.Event == "TICK" {
			n.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.disconnect()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		out, err := m.run(ctx, "query-status", nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != `{"cmd": "query-status"}` {
			t.Errorf("reply %s", out)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 1500 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := n.Load(); got != 1500 {
		t.Errorf("got %d events, want 1500", got)
	}
}

// With a real QEMU: while another QMP client holds the socket, Attach fails in bounded
// time and says why; once it leaves, Attach works.
func TestAttachWhileAnotherQMPClient(t *testing.T) {
	shortQMPTimeouts(t)
	cfg := testConfig(t)
	v := startVM(t, cfg)
	v.Close()
	other, err := net.Dial("unix", filepath.Join(cfg.Dir, qmpSocket))
	if err != nil {
		t.Fatal(err)
	}
	greeting, err := bufio.NewReader(other).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("other client got %.40s...", greeting)
	if _, err := Attach(context.Background(), cfg.Dir); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Attach with another client = %v, want a deadline error", err)
	}
	other.Close()
	v2, err := Attach(context.Background(), cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if st, err := v2.State(context.Background()); err != nil || st != StateRunning {
		t.Errorf("State = %q, %v", st, err)
	}
}
