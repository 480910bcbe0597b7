package testenv

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// EchoServer listens on ip:0 inside ns until the test ends and answers each
// connection's first line with "<line> from <remote ip>", so a test sees both that
// a packet arrived and with which source address (masquerade or not). It returns
// the address it listens on.
func (ns *NetNS) EchoServer(t testing.TB, ip net.IP) string {
	t.Helper()
	var ln net.Listener
	ns.MustDo(t, func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(ip.String(), "0"))
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "%s from %s\n", strings.TrimSuffix(line, "\n"), host)
			}()
		}
	}()
	return ln.Addr().String()
}

// DialEcho sends "hello" to the EchoServer at addr from inside ns and returns its
// answer; timeout bounds the connect and the exchange.
func (ns *NetNS) DialEcho(addr string, timeout time.Duration) (string, error) {
	var answer string
	err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := fmt.Fprintf(c, "hello\n"); err != nil {
			return err
		}
		answer, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	return answer, err
}
