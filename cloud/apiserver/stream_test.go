package apiserver

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/cloud/tunnel"
)

// fakeBackend stands in for an agent at the tunnel's border.
type fakeBackend struct{ followed chan struct{} }

func (f *fakeBackend) Logs(ctx context.Context, req *tunnel.Request, w io.Writer) error {
	if req.Container != "c" {
		return fmt.Errorf("no container %q", req.Container)
	}
	fmt.Fprintf(w, "line 1 of %s/%s\nline 2\n", req.Namespace, req.Pod)
	if req.Follow {
		close(f.followed)
		<-ctx.Done() // a followed log lasts until the client leaves
	}
	return nil
}

func (f *fakeBackend) Exec(ctx context.Context, req *tunnel.Request, stdio tunnel.ExecIO) (int, error) {
	switch req.Command[0] {
	case "cat":
		_, err := io.Copy(stdio.Stdout, stdio.Stdin)
		return 0, err
	case "fail":
		fmt.Fprint(stdio.Stderr, "failing on purpose")
		return 3, nil
	}
	return -1, errors.New("no such command: " + req.Command[0])
}

func (f *fakeBackend) Images(ctx context.Context, req *tunnel.Request, body io.Reader, w io.Writer) error {
	switch req.Action {
	case "list":
		_, err := io.WriteString(w, `[{"ref":"docker.io/library/busybox:1.36"}]`)
		return err
	case "import":
		n, err := io.Copy(io.Discard, body)
		fmt.Fprintf(w, `{"bytes":%d}`, n)
		return err
	}
	return errors.New("unsupported action " + req.Action)
}

func testClient(t *testing.T, ts *httptest.Server, token string) *client.Client {
	t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	cl, err := client.New(client.Config{Server: ts.URL, CACert: ca, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestLogsAndExecThroughTheAgentTunnel(t *testing.T) {
	ts, _ := newTestServer(t)
	for pod, node := range map[string]string{"p": "n1", "lonely": "n2"} {
		call(t, ts, testToken, "POST", podsPath, "application/json", podJSON(pod, nil))
		call(t, ts, testToken, "POST", podsPath+"/"+pod+"/binding", "application/json", []byte(`{"target":{"name":"`+node+`"}}`))
	}
	admin := testClient(t, ts, testToken)
	ctx := context.Background()
	if a := call(t, ts, testToken, "POST", "/api/v1/nodes", "application/json", []byte(`{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}`)); a.code != http.StatusCreated {
		t.Fatalf("node: %d %s", a.code, a.body)
	}

	// A node whose agent never connects: after the wait, the node is unreachable.
	if _, err := admin.Logs(ctx, "default", "lonely", client.LogOptions{}); client.Reason(err) != "ServiceUnavailable" {
		t.Fatalf("logs with no tunnel: %v", err)
	}

	backend := &fakeBackend{followed: make(chan struct{})}
	node := testClient(t, ts, "node-secret")
	tctx, stopTunnel := context.WithCancel(ctx)
	defer stopTunnel()
	go tunnel.Connect(tctx, func(ctx context.Context) (net.Conn, error) {
		return node.Upgrade(ctx, http.MethodGet, "/api/v1/nodes/n1/tunnel", nil)
	}, backend, nil)

	// The request waits for the agent's tunnel to come up.
	rc, err := admin.Logs(ctx, "default", "p", client.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != "line 1 of default/p\nline 2\n" {
		t.Fatalf("logs: %q", body)
	}

	// A followed log streams until the client cancels.
	fctx, cancel := context.WithCancel(ctx)
	rc, err = admin.Logs(fctx, "default", "p", client.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "line 1" {
		t.Fatalf("followed log: %q %v", buf, err)
	}
	<-backend.followed
	cancel()
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()

	var out, errOut bytes.Buffer
	code, err := admin.Exec(ctx, "default", "p", client.ExecOptions{Command: []string{"cat"}, Stdin: strings.NewReader("hello through the tunnel"), Stdout: &out})
	if err != nil || code != 0 || out.String() != "hello through the tunnel" {
		t.Fatalf("exec cat: code %d err %v out %q", code, err, out.String())
	}
	out.Reset()
	code, err = admin.Exec(ctx, "default", "p", client.ExecOptions{Command: []string{"fail"}, Stdout: &out, Stderr: &errOut})
	if err != nil || code != 3 || errOut.String() != "failing on purpose" {
		t.Fatalf("exec fail: code %d err %v stderr %q", code, err, errOut.String())
	}
	if _, err := admin.Exec(ctx, "default", "p", client.ExecOptions{Command: []string{"nope"}, Stdout: &out}); err == nil || !strings.Contains(err.Error(), "no such command") {
		t.Fatalf("exec of a missing command: %v", err)
	}
	if _, err := admin.Exec(ctx, "default", "p", client.ExecOptions{Container: "zzz", Command: []string{"cat"}}); err == nil || !strings.Contains(err.Error(), `container "zzz" is not in pod p`) {
		t.Fatalf("exec in a missing container: %v", err)
	}
	// Images go to the node's agent too; an import's body is streamed through.
	rc, err = admin.Raw(ctx, http.MethodGet, "/api/v1/nodes/n1/images")
	if err != nil {
		t.Fatal(err)
	}
	list, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.Contains(string(list), "busybox:1.36") {
		t.Fatalf("image list: %s", list)
	}
	a := callBody(t, ts, testToken, "POST", "/api/v1/nodes/n1/images?action=import", bytes.Repeat([]byte("x"), 200000))
	if a.code != http.StatusOK || string(a.body) != `{"bytes":200000}` {
		t.Fatalf("import: %d %s", a.code, a.body)
	}
	if a := callBody(t, ts, testToken, "POST", "/api/v1/nodes/n1/images?action=prune", nil); a.code != http.StatusBadRequest || !strings.Contains(string(a.body), "unsupported action prune") {
		t.Fatalf("an agent error comes back as the answer: %d %s", a.code, a.body)
	}

	// Nodes may not exec.
	if _, err := node.Exec(ctx, "default", "p", client.ExecOptions{Command: []string{"cat"}}); client.Reason(err) != "Forbidden" {
		t.Fatalf("exec with the node token: %v", err)
	}
}

// callBody is call for bodies that need no content type.
func callBody(t *testing.T, ts *httptest.Server, token, method, path string, body []byte) answer {
	t.Helper()
	return call(t, ts, token, method, path, "application/octet-stream", body)
}
