package agent

import (
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "a", "EMPTY": "", "B": "$(A)"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "a"},
		{"x$(A)y$(A)", "xaya"},
		{"$(EMPTY)|", "|"},
		{"$(MISSING)", "$(MISSING)"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$a"},
		{"$A", "$A"},
		{"$(A", "$(A"},
		{"trailing$", "trailing$"},
		{"$(B)", "$(A)"}, // values are not expanded again
		{"$()", "$()"},
	} {
		if got := expand(tc.in, lookup); got != tc.want {
			t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func running() api.ContainerState { return api.ContainerState{Running: &api.ContainerStateRunning{}} }
func waiting() api.ContainerState {
	return api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "X"}}
}
func exited(code int32) api.ContainerState {
	return api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: code}}
}
func cs(state api.ContainerState, last ...int32) api.ContainerStatus {
	s := api.ContainerStatus{State: state}
	if len(last) > 0 {
		s.LastTerminationState = exited(last[0])
	}
	return s
}

func TestPodPhase(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy string
		inits  []api.ContainerStatus
		ctrs   []api.ContainerStatus
		want   string
	}{
		{"init running", api.RestartAlways, []api.ContainerStatus{cs(running())}, []api.ContainerStatus{cs(waiting())}, api.PodPending},
		{"init failed, Never", api.RestartNever, []api.ContainerStatus{cs(exited(1))}, []api.ContainerStatus{cs(waiting())}, api.PodFailed},
		{"init in back-off, Always", api.RestartAlways, []api.ContainerStatus{cs(waiting(), 1)}, []api.ContainerStatus{cs(waiting())}, api.PodPending},
		{"init done, container creating", api.RestartAlways, []api.ContainerStatus{cs(exited(0))}, []api.ContainerStatus{cs(waiting())}, api.PodPending},
		{"one running, one creating", api.RestartAlways, nil, []api.ContainerStatus{cs(running()), cs(waiting())}, api.PodPending},
		{"all running", api.RestartAlways, nil, []api.ContainerStatus{cs(running()), cs(running())}, api.PodRunning},
		{"running and done", api.RestartOnFailure, nil, []api.ContainerStatus{cs(running()), cs(exited(0))}, api.PodRunning},
		{"crash loop, Always", api.RestartAlways, nil, []api.ContainerStatus{cs(waiting(), 1)}, api.PodRunning},
		{"all exited, Always", api.RestartAlways, nil, []api.ContainerStatus{cs(exited(0))}, api.PodRunning},
		{"all succeeded, OnFailure", api.RestartOnFailure, nil, []api.ContainerStatus{cs(exited(0)), cs(exited(0))}, api.PodSucceeded},
		{"one failed, Never", api.RestartNever, nil, []api.ContainerStatus{cs(exited(0)), cs(exited(2))}, api.PodFailed},
		{"one failed, OnFailure restarting", api.RestartOnFailure, nil, []api.ContainerStatus{cs(exited(0)), cs(waiting(), 2)}, api.PodRunning},
	} {
		if got := podPhase(tc.policy, tc.inits, tc.ctrs); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := backoffPolicy{Base: 10 * time.Second, Max: 40 * time.Second, Reset: 10 * time.Minute}
	var b backoff
	t0 := time.Unix(1000, 0)
	var waits []time.Duration
	for range 6 {
		waits = append(waits, b.restartAt(p, t0, time.Second).Sub(t0))
		b.restarted(p)
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second, 40 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	// A container that ran long enough starts over.
	if d := b.restartAt(p, t0, 10*time.Minute).Sub(t0); d != 0 {
		t.Errorf("after a long run: %v", d)
	}

	var r retry
	if at := r.failed(p, t0); at.Sub(t0) != 10*time.Second || !r.waiting(t0.Add(9*time.Second)) || r.waiting(at) {
		t.Errorf("first retry at %v", at.Sub(t0))
	}
	if at := r.failed(p, t0); at.Sub(t0) != 20*time.Second {
		t.Errorf("second retry at %v", at.Sub(t0))
	}
	r.reset()
	if r.waiting(t0) {
		t.Error("waiting after reset")
	}
}

func TestHostsFile(t *testing.T) {
	p := &api.Pod{}
	p.Name, p.Namespace = "web", "default"
	got := hostsFile(p, "web", "10.244.1.2")
	want := "# Kubernetes-managed hosts file (cloudbox).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.244.1.2\tweb\n"
	if got != want {
		t.Errorf("hosts:\n%s\nwant:\n%s", got, want)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	a := &Agent{cfg: Config{StateDir: t.TempDir()}}
	if rec, err := a.loadRecord("u1"); rec != nil || err != nil {
		t.Fatalf("missing record: %v %v", rec, err)
	}
	rec := &podRecord{UID: "u1", Namespace: "default", Name: "p", Containers: map[string]*containerRecord{
		"c": {Attempt: 2, RestartCount: 2, Current: &TaskHandle{ID: "u1.c.2", PID: 42, State: map[string]string{"bundle": "/x"}},
			Terminated: &api.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}},
	}}
	if err := a.saveRecord(rec); err != nil {
		t.Fatal(err)
	}
	got, err := a.loadRecord("u1")
	if err != nil || got.Containers["c"].Current.PID != 42 || got.Containers["c"].Current.State["bundle"] != "/x" || got.Containers["c"].Terminated.ExitCode != 1 {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if uids, err := a.recordedPods(); err != nil || len(uids) != 1 || uids[0] != "u1" {
		t.Errorf("recorded pods %v %v", uids, err)
	}
	if err := a.saveRecord(&podRecord{UID: "../x"}); err == nil {
		t.Error("a UID with a path separator was accepted")
	}
}
