package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// waitTimeout bounds every wait on a channel in the tests; it is a failure bound, not
// a synchronisation delay.
const waitTimeout = 10 * time.Second

func mustKind(name string) *api.KindInfo {
	k, ok := api.LookupKind(name)
	if !ok {
		panic("no kind " + name)
	}
	return k
}

var (
	pods       = mustKind("pods")
	namespaces = mustKind("namespaces")
)

// openTest opens a store in a fresh directory and closes it when the test ends.
func openTest(t testing.TB, opts Options) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cloudbox.db")
	return openAt(t, path, opts), path
}

func openAt(t testing.TB, path string, opts Options) *Bolt {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newPod(ns, name string) *api.Pod {
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "main", Image: "busybox"}}},
	}
}

func newNamespace(name string) *api.Namespace {
	return &api.Namespace{ObjectMeta: api.ObjectMeta{Name: name}}
}

func mustCreate(t testing.TB, s Store, k *api.KindInfo, obj api.Object) api.Object {
	t.Helper()
	out, err := s.Create(context.Background(), k, obj)
	if err != nil {
		t.Fatalf("Create %s: %v", obj.GetObjectMeta().Key(), err)
	}
	return out
}

// next receives one event or fails the test after waitTimeout.
func next(t testing.TB, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed early")
		}
		return ev
	case <-time.After(waitTimeout):
		t.Fatal("no event within", waitTimeout)
	}
	return Event{}
}

// closed waits for the channel to close, draining it; it fails on a timeout.
func closed(t testing.TB, ch <-chan Event) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("watch channel not closed within %v (%d events)", waitTimeout, len(got))
		}
	}
}
