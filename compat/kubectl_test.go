package compat

import (
	"strings"
	"testing"
)

// kubectl's --validate=true|warn|strict (true is its default) validates on the client
// against the server's OpenAPI document, which cloudbox does not serve, so today every
// test here passes --validate=false, and kubectl then sends fieldValidation=Ignore.

// legacyManifest is one of the manifests written for retired API versions, as course
// material has them.
func legacyManifest(name string) string {
	return repoPath("testdata", "manifests", "legacy", name)
}

// TestKubectlPrintsLegacySelectorWarning applies an apps/v1beta2 Deployment without
// spec.selector with a real kubectl: it is created, kubectl prints the server's
// warning that the selector was defaulted, and get and delete work on it.
func TestKubectlPrintsLegacySelectorWarning(t *testing.T) {
	c := startCluster(t)
	c.importBusybox(t)
	manifest := legacyManifest("deployment-apps-v1beta2.yaml")

	r := c.mustKubectl(t, "apply", "--validate=false", "-f", manifest)
	if !strings.Contains(r.stdout, "deployment.apps/web-frontend created") {
		t.Errorf("apply printed %q, want deployment.apps/web-frontend created", r.stdout)
	}
	wantLine(t, r.stderr, "Warning: apps/v1beta2 Deployment web-frontend: spec.selector defaulted to app=webapp,role=frontend from the template's labels; write it out for apps/v1")

	r = c.mustKubectl(t, "get", "deploy", "web-frontend", "-o", "jsonpath={.spec.selector.matchLabels.app},{.spec.selector.matchLabels.role}")
	if r.stdout != "webapp,frontend" {
		t.Errorf("the Deployment's selector is app,role=%q, want webapp,frontend", r.stdout)
	}
	r = c.mustKubectl(t, "get", "deploy")
	if !strings.Contains(r.stdout, "web-frontend") {
		t.Errorf("get deploy printed %q, want web-frontend listed", r.stdout)
	}

	r = c.mustKubectl(t, "delete", "-f", manifest)
	if !strings.Contains(r.stdout, `deployment.apps "web-frontend" deleted`) {
		t.Errorf("delete printed %q, want deployment.apps \"web-frontend\" deleted", r.stdout)
	}
	r = c.mustKubectl(t, "get", "deploy")
	wantLine(t, r.stderr, "No resources found in default namespace.")
}

// TestKubectlPrintsUnknownFieldWarnings sends a pod with misspelt fields through a
// real kubectl: with the server's default field validation (Warn) kubectl prints a
// warning for each, naming the field meant; with --validate=false, which sends
// fieldValidation=Ignore, it prints none.
func TestKubectlPrintsUnknownFieldWarnings(t *testing.T) {
	c := startCluster(t)
	c.importBusybox(t)
	manifest := legacyManifest("pod-with-typos.yaml")

	// The namespace is applied, not made with kubectl create namespace, which sends
	// protobuf.
	c.mustKubectl(t, "apply", "--validate=false", "-f", repoPath("testdata", "manifests", "namespace.yaml"))
	// create --raw sends the file as it is, with no fieldValidation parameter.
	r := c.mustKubectl(t, "create", "--raw", "/api/v1/namespaces/demo/pods", "-f", manifest)
	for _, w := range []string{
		`Warning: v1 Pod hello: metadata.lables: unknown field (did you mean "labels"?)`,
		`Warning: v1 Pod hello: spec.containers[0].comand: unknown field (did you mean "command"?)`,
		`Warning: v1 Pod hello: spec.containers[0].port: unknown field (did you mean "ports"?)`,
	} {
		wantLine(t, r.stderr, w)
	}
	if !strings.Contains(r.stdout, `"name":"hello"`) || !strings.Contains(r.stdout, `"namespace":"demo"`) {
		t.Errorf("create --raw printed %q, want the pod demo/hello", r.stdout)
	}
	// A pod is deleted gracefully, and kubectl delete waits for it to go on a
	// watch-list stream (sendInitialEvents=true), which ends its initial events with
	// the bookmark client-go waits for.
	r = c.mustKubectl(t, "delete", "-n", "demo", "pod", "hello")
	if !strings.Contains(r.stdout, `pod "hello" deleted`) {
		t.Errorf("delete printed %q, want pod \"hello\" deleted", r.stdout)
	}
	r = c.mustKubectl(t, "get", "pods", "-n", "demo")
	wantLine(t, r.stderr, "No resources found in demo namespace.")

	r = c.mustKubectl(t, "apply", "--validate=false", "-f", manifest)
	if !strings.Contains(r.stdout, "pod/hello created") {
		t.Errorf("apply printed %q, want pod/hello created", r.stdout)
	}
	if strings.Contains(r.stderr, "unknown field") {
		t.Errorf("apply --validate=false (fieldValidation=Ignore) printed warnings:\n%s", r.stderr)
	}
}

// mustKubectl runs kubectl and fails the test if it exits non-zero.
func (c *cluster) mustKubectl(t *testing.T, args ...string) result {
	t.Helper()
	r := c.kubectl(args...)
	if r.err != nil {
		t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r
}

// wantLine fails the test unless out has line as one of its lines.
func wantLine(t *testing.T, out, line string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("no line %q in:\n%s", line, out)
}
