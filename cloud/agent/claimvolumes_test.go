package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// startSweepingAgent runs an agent on the harness that reports each sweep of the
// claims' local volumes on the returned channel.
func (h *harness) startSweepingAgent() <-chan error {
	h.t.Helper()
	a, err := New(Config{
		Client: h.agentClient, NodeName: h.node, HeartbeatInterval: time.Hour,
		Resources: &HostResources{Hostname: "host-1", CPUs: 2, MemoryBytes: 4 << 30, Pods: 110, Arch: "amd64"},
		Logger:    zaptest.NewLogger(h.t), Driver: h.drv, StateDir: h.stateDir, Clock: h.clk,
		ResolvConf: writeTemp(h.t, "resolv.conf", "nameserver 192.0.2.53\n"),
		HostsFile:  writeTemp(h.t, "hosts", "127.0.0.1 localhost host-1\n"),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	swept := make(chan error, 64)
	a.claimsSwept = func(err error) { swept <- err }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("agent: %v", err)
		}
	})
	return swept
}

func (h *harness) newClaim(name string) *api.PersistentVolumeClaim {
	h.t.Helper()
	k, _ := api.LookupKind("persistentvolumeclaims")
	c := k.NewObject().(*api.PersistentVolumeClaim)
	c.Namespace, c.Name = "default", name
	c.Spec.AccessModes = []string{api.ReadWriteOnce}
	c.Spec.Resources.Requests = api.ResourceList{api.ResourceStorage: api.MustParseQuantity("1Gi")}
	return h.create(c).(*api.PersistentVolumeClaim)
}

// claimDir makes the local volume claimVolume would have made for uid, with a file
// in it.
func (h *harness) claimDir(uid string) string {
	h.t.Helper()
	dir := filepath.Join(h.stateDir, "volumes", "default", uid)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), []byte("keep me"), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return dir
}

// waitSweep waits for the agent's next sweep and fails the test if it failed.
func waitSweep(t *testing.T, swept <-chan error) {
	t.Helper()
	select {
	case err := <-swept:
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the agent did not sweep the claims' volumes")
	}
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestClaimVolumesGoWithTheirClaims(t *testing.T) {
	h := newHarness(t)
	a, b := h.newClaim("a"), h.newClaim("b")
	dirA, dirB := h.claimDir(a.UID), h.claimDir(b.UID)
	// The volume of a claim deleted while no agent ran.
	stale := h.claimDir("0a6f1c7e-5d3b-4c1e-9f2a-7b8c9d0e1f2a")

	swept := h.startSweepingAgent()
	waitSweep(t, swept)
	if exists(t, stale) {
		t.Errorf("the volume of a claim deleted before the agent started is still there")
	}
	if !exists(t, dirA) || !exists(t, dirB) {
		t.Fatalf("a live claim's volume was removed at start (a: %v, b: %v)", exists(t, dirA), exists(t, dirB))
	}

	k, _ := api.LookupKind("persistentvolumeclaims")
	if _, err := h.cl.Delete(context.Background(), k, "default", "b"); err != nil {
		t.Fatal(err)
	}
	// A sweep may be under way as the delete lands, and have listed b before it went:
	// the one after the deletion is what counts, so wait until b's volume is gone.
	for exists(t, dirB) {
		waitSweep(t, swept)
	}
	if !exists(t, filepath.Join(dirA, "data")) {
		t.Fatal("deleting claim b removed claim a's volume")
	}

	if _, err := h.cl.Delete(context.Background(), k, "default", "a"); err != nil {
		t.Fatal(err)
	}
	for exists(t, dirA) {
		waitSweep(t, swept)
	}
}
