// Package tunnel carries logs and exec between the API server and node agents over a
// connection the agent opens, so that workers behind NAT (edge sites) need no
// inbound port: the agent dials the master once and the master opens streams back
// over it (yamux). It also frames the bidirectional exec streams end to end, from
// the CLI through the API server to the agent.
package tunnel

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Protocol names the HTTP upgrade cloudbox speaks for tunnels and exec streams.
const Protocol = "cloudbox-stream/1"

// Dial opens a TLS connection to base (https://host:port) and upgrades the request
// method path?query to a raw stream. It speaks HTTP/1.1 on purpose: HTTP/2 has no
// Upgrade.
func Dial(ctx context.Context, base *url.URL, tlsCfg *tls.Config, token, method, path string, query url.Values) (net.Conn, error) {
	host := base.Host
	if !strings.Contains(host, ":") {
		host += ":443"
	}
	cfg := tlsCfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	if cfg.ServerName == "" {
		cfg.ServerName = base.Hostname()
	}
	d := tls.Dialer{Config: cfg}
	raw, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	conn := raw.(*tls.Conn)
	u := url.URL{Path: base.Path + path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+host+u.RequestURI(), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", Protocol)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer conn.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, &UpgradeError{Code: resp.StatusCode, Body: body}
	}
	return &bufferedConn{Conn: conn, r: br}, nil
}

// UpgradeError is a refused upgrade; Body holds the server's answer (a Status).
type UpgradeError struct {
	Code int
	Body []byte
}

func (e *UpgradeError) Error() string {
	return fmt.Sprintf("upgrade refused: %d %s", e.Code, strings.TrimSpace(string(e.Body)))
}

// bufferedConn reads first what the response reader buffered past the headers.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// IsUpgrade reports whether r asks for a cloudbox stream.
func IsUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), Protocol)
}

// Accept answers an upgrade request with 101 and returns the raw connection.
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	if !IsUpgrade(r) {
		return nil, errors.New("not an upgrade request for " + Protocol)
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("connection cannot be taken over (HTTP/2 has no upgrade): %w", err)
	}
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + Protocol + "\r\n\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	if brw.Reader.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: brw.Reader}, nil
	}
	return conn, nil
}
