package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap/zaptest"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/cloud/server"
	"github.com/cloudbox/cloudbox/internal/testenv"
	"github.com/cloudbox/cloudbox/store"
)

// cluster is an all-in-one server on a loopback port for the length of a test.
type cluster struct {
	t      *testing.T
	config string
	dir    string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	return startClusterWith(t, nil)
}

// startClusterWith is startCluster with changes to the server's config (may be nil).
func startClusterWith(t *testing.T, change func(*server.Config)) *cluster {
	t.Helper()
	dir := t.TempDir()
	cfg := server.Config{DataDir: dir, Listen: "127.0.0.1:0", NodeName: "node-1", Logger: zaptest.NewLogger(t),
		CgroupParent:  testenv.CgroupParent(t),
		NodeResources: &agent.HostResources{Hostname: "node-1", CPUs: 4, MemoryBytes: 8 << 30, Pods: 110, Arch: "amd64"}}
	if change != nil {
		change(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("server exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready")
	}
	return &cluster{t: t, config: filepath.Join(dir, "admin.config"), dir: dir}
}

// client returns an API client for the cluster.
func (c *cluster) client() *client.Client {
	c.t.Helper()
	cfg, err := client.LoadConfigFile(c.config)
	if err != nil {
		c.t.Fatal(err)
	}
	cl, err := client.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// run runs the CLI with args and returns stdout, stderr and the error.
func (c *cluster) run(stdin string, args ...string) (string, string, error) {
	app := App()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter, app.Reader = &out, &errOut, strings.NewReader(stdin)
	app.ExitErrHandler = func(*cli.Context, error) {} // keep cli.Exit from ending the test binary
	err := app.Run(ReorderArgs(app, append([]string{"cloudbox", "--config", c.config}, args...)))
	return out.String(), errOut.String(), err
}

// must runs the CLI and fails the test on error.
func (c *cluster) must(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run("", args...)
	if err != nil {
		c.t.Fatalf("cloudbox %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const webManifest = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: httpd
    image: busybox:1.36
    resources:
      requests: {cpu: 100m, memory: 64Mi}
---
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
`

func TestApplyGetDescribeDelete(t *testing.T) {
	c := startCluster(t)
	f := writeFile(t, "web.yaml", webManifest)

	if out := c.must("apply", "-f", f); out != "pod/web created\nnamespace/team-a created\n" {
		t.Fatalf("first apply:\n%s", out)
	}
	if out := c.must("apply", "-f", f); out != "pod/web unchanged\nnamespace/team-a unchanged\n" {
		t.Fatalf("second apply:\n%s", out)
	}
	changed := writeFile(t, "web2.yaml", strings.Replace(webManifest, "{app: web}", "{app: web, tier: front}", 1))
	if out := c.must("apply", "-f", changed); !strings.HasPrefix(out, "pod/web configured\n") {
		t.Fatalf("apply with a new label:\n%s", out)
	}

	// The scheduler binds it; -o wide shows the node.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.must("get", "pods", "-o", "wide"), "node-1") {
		if time.Now().After(deadline) {
			t.Fatalf("pod not bound:\n%s", c.must("get", "pods", "-o", "wide"))
		}
		time.Sleep(50 * time.Millisecond) // polling the CLI's own output, which is what is under test
	}
	table := c.must("get", "pods")
	if !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "web") || !strings.Contains(table, "0/1") {
		t.Fatalf("get pods:\n%s", table)
	}
	if out := c.must("get", "po", "-o", "name"); out != "pod/web\n" {
		t.Fatalf("-o name: %q", out)
	}
	var pod api.Pod
	if err := json.Unmarshal([]byte(c.must("get", "pod", "web", "-o", "json")), &pod); err != nil || pod.Name != "web" || pod.Labels["tier"] != "front" {
		t.Fatalf("-o json: %v %+v", err, pod.ObjectMeta)
	}
	if out := c.must("get", "pod/web", "-o", "yaml"); !strings.Contains(out, "kind: Pod") || !strings.Contains(out, "image: busybox:1.36") {
		t.Fatalf("-o yaml:\n%s", out)
	}
	if out := c.must("get", "pods", "-l", "tier=back", "-o", "name"); out != "" {
		t.Fatalf("-l tier=back matched: %q", out)
	}
	if out := c.must("get", "pods", "-A"); !strings.HasPrefix(out, "NAMESPACE") {
		t.Fatalf("-A has no NAMESPACE column:\n%s", out)
	}
	if out := c.must("get", "ns"); !strings.Contains(out, "team-a") || !strings.Contains(out, "Active") {
		t.Fatalf("get ns:\n%s", out)
	}
	if out := c.must("get", "nodes", "-o", "wide"); !strings.Contains(out, "node-1") || !strings.Contains(out, "Ready") || !strings.Contains(out, "control-plane") {
		t.Fatalf("get nodes:\n%s", out)
	}
	if out := c.must("describe", "pod", "web"); !regexp.MustCompile(`Node:\s+node-1`).MatchString(out) || !strings.Contains(out, "PodScheduled") {
		t.Fatalf("describe pod:\n%s", out)
	}
	if out := c.must("describe", "node", "node-1"); !strings.Contains(out, "Allocatable:") || !strings.Contains(out, "cpu=4") {
		t.Fatalf("describe node:\n%s", out)
	}

	if out := c.must("delete", "-f", f); out != "pod \"web\" deleted\nnamespace \"team-a\" deleted\n" {
		t.Fatalf("delete -f:\n%s", out)
	}
	if _, errOut, err := c.run("", "get", "pod", "web"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("get after delete: %v %s", err, errOut)
	}
}

func TestApplyFromStdinAndDirectory(t *testing.T) {
	c := startCluster(t)
	out, errOut, err := c.run(webManifest, "apply", "-f", "-")
	if err != nil || !strings.Contains(out, "pod/web created") {
		t.Fatalf("apply -f -: %v %s %s", err, out, errOut)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: dir-a}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"dir-b"}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a manifest"), 0o644)
	if out := c.must("apply", "-f", dir); out != "namespace/dir-a created\nnamespace/dir-b created\n" {
		t.Fatalf("apply -f DIR:\n%s", out)
	}
}

func TestCLIErrorsAreClear(t *testing.T) {
	c := startCluster(t)
	bad := writeFile(t, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec:\n  containers:\n  - name: c\n")
	_, errOut, err := c.run("", "apply", "-f", bad)
	if err == nil || !strings.Contains(errOut, "spec.containers[0].image: required") || !strings.Contains(errOut, "metadata.name") {
		t.Fatalf("invalid manifest: %v\n%s", err, errOut)
	}
	unknown := writeFile(t, "u.yaml", "apiVersion: v1\nkind: Gizmo\nmetadata: {name: g}\n")
	if _, _, err := c.run("", "apply", "-f", unknown); err == nil || !strings.Contains(err.Error(), "Gizmo") {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, _, err := c.run("", "get", "gizmos"); err == nil || !strings.Contains(err.Error(), `unknown kind "gizmos"`) {
		t.Fatalf("get unknown kind: %v", err)
	}
	if _, _, err := c.run("", "get", "pods", "-o", "xml"); err == nil || !strings.Contains(err.Error(), "json, yaml, wide or name") {
		t.Fatalf("bad -o: %v", err)
	}
	if _, _, err := c.run("", "delete", "pod", "ghost"); err == nil {
		t.Fatal("deleting a missing pod succeeded")
	}
	if _, _, err := c.run("", "delete", "pod", "ghost", "--ignore-not-found"); err != nil {
		t.Fatalf("--ignore-not-found: %v", err)
	}
}

func TestBackupThroughTheAPIAndRestore(t *testing.T) {
	c := startCluster(t)
	c.must("apply", "-f", writeFile(t, "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: keep-me}\n"))
	backup := filepath.Join(t.TempDir(), "backup.db")
	if out := c.must("admin", "backup", backup); !strings.Contains(out, "wrote "+backup) {
		t.Fatalf("backup: %s", out)
	}
	// Restoring into the running server's data dir is refused: it is locked.
	if _, _, err := c.run("", "admin", "restore", "--data-dir", c.dir, backup); err == nil {
		t.Fatal("restore into a running server's data dir succeeded")
	}
	// Into a fresh data dir it works, and the store there has the object.
	fresh := filepath.Join(t.TempDir(), "restored")
	c.must("admin", "restore", "--data-dir", fresh, backup)
	copyBack := filepath.Join(t.TempDir(), "offline.db")
	c.must("admin", "backup", "--data-dir", fresh, copyBack)
	st, err := store.Open(copyBack, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nsKind, _ := api.LookupKind("namespaces")
	if _, err := st.Get(context.Background(), nsKind, "", "keep-me"); err != nil {
		t.Fatalf("restored store lacks namespace keep-me: %v", err)
	}
}

func TestVersion(t *testing.T) {
	app := App()
	var out bytes.Buffer
	app.Writer = &out
	if err := app.Run([]string{"cloudbox", "version"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cloudbox dev", "commit:", "go: go1."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSecretsAreSealedAndKeysRotate(t *testing.T) {
	c := startCluster(t)
	c.must("apply", "-f", writeFile(t, "s.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: open-sesame-42}\n"))
	if out := c.must("admin", "rotate-encryption-key"); !strings.Contains(out, "sealed with key k2 (1 re-sealed)") {
		t.Fatalf("rotate: %s", out)
	}
	var s api.Secret
	if err := json.Unmarshal([]byte(c.must("get", "secret", "db", "-o", "json")), &s); err != nil || string(s.Data["password"]) != "open-sesame-42" {
		t.Fatalf("secret after rotation: %v %+v", err, s.Data)
	}
	raw, err := os.ReadFile(filepath.Join(c.dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("b3Blbi1zZXNhbWUtNDI=")) || bytes.Contains(raw, []byte("open-sesame-42")) {
		t.Fatal("the store file holds the secret in the clear")
	}
}

// lineWriter passes each write to a channel, so a test can wait for output.
type lineWriter struct{ ch chan string }

func (w lineWriter) Write(p []byte) (int, error) {
	w.ch <- string(p)
	return len(p), nil
}

func TestGetWatchPrintsChanges(t *testing.T) {
	c := startCluster(t)
	out := lineWriter{ch: make(chan string, 64)}
	app := App()
	app.Writer, app.ErrWriter = out, out
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, ReorderArgs(app, []string{"cloudbox", "--config", c.config, "get", "ns", "-w", "-o", "name"}))
	}()
	// The current namespaces come first, then the one created after the watch began.
	want := map[string]bool{"namespace/default": false, "namespace/watched": false}
	created := false
	deadline := time.After(20 * time.Second)
	for !want["namespace/watched"] {
		select {
		case line := <-out.ch:
			name := strings.TrimSpace(line)
			if _, ok := want[name]; ok {
				want[name] = true
			}
			if want["namespace/default"] && !created {
				created = true
				c.must("apply", "-f", writeFile(t, "w.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: watched}\n"))
			}
		case <-deadline:
			t.Fatalf("get -w did not print the new namespace; saw %v", want)
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("get -w ended with %v", err)
	}
}
