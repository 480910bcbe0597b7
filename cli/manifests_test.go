package cli

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func legacyDir() string { return filepath.Join("..", "testdata", "manifests", "legacy") }

// warningLines are the "Warning: " lines of stderr, without the prefix.
func warningLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if w, ok := strings.CutPrefix(l, "Warning: "); ok {
			out = append(out, w)
		}
	}
	return out
}

func TestApplyLegacyManifests(t *testing.T) {
	c := startCluster(t)
	out, errOut, err := c.run("", "apply", "-f", legacyDir())
	if err != nil {
		t.Fatalf("apply: %v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{
		"daemonset.apps/fluentd-elasticsearch created", "deployment.apps/web-frontend created", "deployment.apps/nginx-deployment created",
		"pod/hello created", "replicaset.apps/frontend created", "service/nginx created", "statefulset.apps/web created",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("stdout has no %q:\n%s", want, out)
		}
	}
	warnings := warningLines(errOut)
	for _, want := range []string{
		"apps/v1beta2 Deployment web-frontend: spec.selector defaulted to app=webapp,role=frontend from the template's labels; write it out for apps/v1",
		"apps/v1beta1 ReplicaSet frontend: spec.selector defaulted to tier=frontend from the template's labels; write it out for apps/v1",
		`v1 Pod hello: spec.containers[0].port: unknown field (did you mean "ports"?)`,
		`v1 Pod hello: metadata.lables: unknown field (did you mean "labels"?)`,
	} {
		if !slices.Contains(warnings, want) {
			t.Errorf("no warning %q in:\n%s", want, errOut)
		}
	}
	var d api.Deployment
	if err := json.Unmarshal([]byte(c.must("get", "deploy", "web-frontend", "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Selector; got == nil || got.MatchLabels["app"] != "webapp" || got.MatchLabels["role"] != "frontend" {
		t.Errorf("stored selector %+v", got)
	}

	// Applied again, nothing changes, and the warnings are said again.
	out, errOut, err = c.run("", "apply", "-f", filepath.Join(legacyDir(), "replicaset-apps-v1beta1.yaml"))
	if err != nil || out != "replicaset.apps/frontend unchanged\n" || len(warningLines(errOut)) != 2 {
		t.Errorf("second apply: %v\n%s%s", err, out, errOut)
	}
}

func TestApplyValidate(t *testing.T) {
	c := startCluster(t)
	typos := filepath.Join(legacyDir(), "pod-with-typos.yaml")
	ok := writeFile(t, "ok.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: strict-ok}\n")

	// Strict refuses, naming each field, and writes nothing: not even the good file.
	out, errOut, err := c.run("", "apply", "--validate=strict", "-f", ok, "-f", typos)
	if err == nil || out != "" {
		t.Fatalf("strict apply succeeded: %v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{`metadata.lables: unknown field (did you mean "labels"?)`, `spec.containers[0].port: unknown field (did you mean "ports"?)`, "pod-with-typos.yaml: document 1 (Pod hello)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("strict error has no %q: %v", want, err)
		}
	}
	for _, ref := range []string{"ns/strict-ok", "pod/hello"} {
		if _, _, err := c.run("", "get", ref); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("%s was written by a refused apply: %v", ref, err)
		}
	}
	if _, _, err := c.run("", "apply", "--validate=true", "-f", typos); err == nil {
		t.Error("--validate=true is not strict")
	}
	if _, _, err := c.run("", "apply", "--validate=loose", "-f", typos); err == nil || !strings.Contains(err.Error(), "use strict, warn or ignore") {
		t.Errorf("--validate=loose: %v", err)
	}

	// Ignore keeps quiet; the default warns.
	out, errOut, err = c.run("", "apply", "--validate=ignore", "-f", typos)
	if err != nil || out != "pod/hello created\n" || errOut != "" {
		t.Errorf("ignore: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = c.run("", "apply", "-f", typos)
	if err != nil || out != "pod/hello unchanged\n" || len(warningLines(errOut)) != 4 {
		t.Errorf("warn: %v\n%s%s", err, out, errOut)
	}
}

func TestScaleCreateReplaceFromFiles(t *testing.T) {
	c := startCluster(t)
	rs := filepath.Join(legacyDir(), "replicaset-apps-v1beta1.yaml")
	replicas := func() int32 {
		t.Helper()
		var r api.ReplicaSet
		if err := json.Unmarshal([]byte(c.must("get", "rs", "frontend", "-o", "json")), &r); err != nil {
			t.Fatal(err)
		}
		return *r.Spec.Replicas
	}

	// replace needs the object to exist; create makes it, once.
	if out, errOut, err := c.run("", "replace", "-f", rs); err == nil || out != "" || !strings.Contains(errOut, "error: replicaset.apps/frontend: ") || !strings.Contains(errOut, "not found") {
		t.Errorf("replace of a missing object: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err := c.run("", "create", "-f", rs)
	if err != nil || out != "replicaset.apps/frontend created\n" || !strings.Contains(errOut, "Warning: apps/v1beta1 ReplicaSet frontend: spec.selector defaulted") {
		t.Fatalf("create: %v\n%s%s", err, out, errOut)
	}
	other := writeFile(t, "other.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: created-too}\n")
	out, errOut, err = c.run("", "create", "-f", rs, "-f", other)
	if err == nil || out != "namespace/created-too created\n" || !strings.Contains(errOut, "error: replicaset.apps/frontend: ") || !strings.Contains(errOut, "already exists") {
		t.Errorf("create of an existing object: %v\n%s%s", err, out, errOut)
	}

	if out := c.must("scale", "--replicas", "6", "-f", rs); out != "replicaset.apps/frontend scaled\n" {
		t.Errorf("scale -f: %q", out)
	}
	if n := replicas(); n != 6 {
		t.Errorf("replicas after scale -f = %d, want 6", n)
	}
	if out, _, err := c.run("", "scale", "--replicas", "1", "-f", other); err == nil || !strings.Contains(out+err.Error(), "1 of 1 objects failed") {
		t.Errorf("scale -f of a namespace: %v %s", err, out)
	}
	if _, _, err := c.run("", "scale", "rs/frontend", "--replicas", "1", "-f", rs); err == nil {
		t.Error("scale with both KIND/NAME and -f succeeded")
	}

	// replace writes the manifest as it is: its 3 replicas again.
	if out := c.must("replace", "-f", rs); out != "replicaset.apps/frontend replaced\n" {
		t.Errorf("replace: %q", out)
	}
	if n := replicas(); n != 3 {
		t.Errorf("replicas after replace = %d, want the manifest's 3", n)
	}
	if out := c.must("scale", "rs/frontend", "--replicas", "2"); out != "replicaset.apps/frontend scaled\n" {
		t.Errorf("scale KIND/NAME: %q", out)
	}
}
