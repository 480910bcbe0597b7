package hypervisor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// console is a test's session on the guest's serial shell.
type console struct {
	conn net.Conn
	mu   sync.Mutex
	buf  bytes.Buffer
}

func dialConsole(t *testing.T, v *VM) *console {
	t.Helper()
	conn, err := v.DialConsole(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c := &console{conn: conn}
	t.Cleanup(func() { conn.Close() })
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := conn.Read(b)
			c.mu.Lock()
			c.buf.Write(b[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return c
}

// run types line into the shell until want shows up in the output. The line is resent
// now and then: input sent while the shell is still starting may be dropped.
func (c *console) run(t *testing.T, line, want string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			c.mu.Lock()
			got := c.buf.String()
			c.mu.Unlock()
			if strings.Contains(got, want) {
				return
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("console never printed %q; got:\n%s", want, tail(c.buf.String(), 2000))
}

func TestConsole(t *testing.T) {
	v := startVM(t, testConfig(t))
	waitLog(t, v, readyLine, 1)
	c := dialConsole(t, v)
	tok := make([]byte, 6)
	rand.Read(tok)
	token := hex.EncodeToString(tok)
	// The quotes keep the typed line (echoed by the tty) from matching: only the
	// shell's output does.
	c.run(t, `echo hello-""`+token, "hello-"+token)
	// Closing the session leaves the VM running and the console attachable again.
	c.conn.Close()
	c2 := dialConsole(t, v)
	c2.run(t, `echo again-""`+token, "again-"+token)
	if st, err := v.State(context.Background()); err != nil || st != StateRunning {
		t.Errorf("State = %q, %v", st, err)
	}
}
