package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestCreateGetUpdateDelete(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()

	in := newPod("default", "web")
	created, err := s.Create(ctx, pods, in)
	if err != nil {
		t.Fatal(err)
	}
	m := created.GetObjectMeta()
	if m.UID == "" || m.CreationTimestamp == nil || m.ResourceVersion != "1" || m.Generation != 1 {
		t.Fatalf("create did not stamp metadata: %+v", m)
	}
	if in.UID != "" || in.ResourceVersion != "" {
		t.Fatalf("create modified the caller's object: %+v", in.ObjectMeta)
	}
	if tm := created.GetTypeMeta(); tm.Kind != "Pod" || tm.APIVersion != "v1" {
		t.Fatalf("TypeMeta = %+v", tm)
	}

	got, err := s.Get(ctx, pods, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetObjectMeta().UID != m.UID || got.(*api.Pod).Spec.Containers[0].Image != "busybox" {
		t.Fatalf("Get = %+v", got)
	}

	upd := got.(*api.Pod)
	upd.Spec.Containers[0].Image = "nginx"
	upd.UID = "" // a client that drops the uid must not erase it
	upd.CreationTimestamp = nil
	updated, err := s.Update(ctx, pods, upd)
	if err != nil {
		t.Fatal(err)
	}
	um := updated.GetObjectMeta()
	if um.UID != m.UID || !um.CreationTimestamp.Equal(m.CreationTimestamp.Time) {
		t.Fatalf("update lost uid or creationTimestamp: %+v", um)
	}
	if um.ResourceVersion != "2" || s.Revision() != 2 {
		t.Fatalf("resourceVersion %s, revision %d; want 2", um.ResourceVersion, s.Revision())
	}

	deleted, err := s.Delete(ctx, pods, "default", "web", "")
	if err != nil {
		t.Fatal(err)
	}
	if deleted.GetObjectMeta().ResourceVersion != "3" || deleted.(*api.Pod).Spec.Containers[0].Image != "nginx" {
		t.Fatalf("Delete returned %+v", deleted)
	}
	if _, err := s.Get(ctx, pods, "default", "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete: %v", err)
	}
}

func TestWriteErrors(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	mustCreate(t, s, pods, newPod("default", "web"))
	stale := mustCreate(t, s, pods, newPod("default", "db")).(*api.Pod)
	fresh := *stale
	fresh.Labels = map[string]string{"v": "2"}
	if _, err := s.Update(ctx, pods, &fresh); err != nil {
		t.Fatal(err)
	}
	otherUID := *stale
	otherUID.ResourceVersion = ""
	otherUID.UID = "not-the-stored-uid"

	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"create existing", func() error { _, err := s.Create(ctx, pods, newPod("default", "web")); return err }, ErrAlreadyExists},
		{"update missing", func() error { _, err := s.Update(ctx, pods, newPod("default", "nope")); return err }, ErrNotFound},
		{"update stale", func() error { _, err := s.Update(ctx, pods, stale); return err }, ErrConflict},
		{"update other uid", func() error { _, err := s.Update(ctx, pods, &otherUID); return err }, ErrConflict},
		{"delete stale", func() error { _, err := s.Delete(ctx, pods, "default", "db", stale.ResourceVersion); return err }, ErrConflict},
		{"delete missing", func() error { _, err := s.Delete(ctx, pods, "default", "nope", ""); return err }, ErrNotFound},
		{"get missing", func() error { _, err := s.Get(ctx, pods, "default", "nope"); return err }, ErrNotFound},
		{"namespaced without namespace", func() error { _, err := s.Create(ctx, pods, newPod("", "x")); return err }, api.ErrInvalid},
		{"cluster-scoped with namespace", func() error {
			n := newNamespace("x")
			n.Namespace = "default"
			_, err := s.Create(ctx, namespaces, n)
			return err
		}, api.ErrInvalid},
		{"no name", func() error { _, err := s.Create(ctx, pods, newPod("default", "")); return err }, api.ErrInvalid},
		{"slash in name", func() error { _, err := s.Create(ctx, pods, newPod("default", "a/b")); return err }, api.ErrInvalid},
		{"wrong type for kind", func() error { _, err := s.Create(ctx, pods, newNamespace("x")); return err }, api.ErrInvalid},
		{"nil object", func() error { _, err := s.Create(ctx, pods, (*api.Pod)(nil)); return err }, api.ErrInvalid},
		{"get without namespace", func() error { _, err := s.Get(ctx, pods, "", "web"); return err }, api.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// Failed writes consume no revision.
	if got := s.Revision(); got != 3 {
		t.Fatalf("revision = %d after failed writes, want 3", got)
	}
}

func TestErrorNamesTheObject(t *testing.T) {
	s, _ := openTest(t, Options{})
	_, err := s.Get(context.Background(), pods, "default", "web")
	if want := "pods default/web: not found"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestGenerateName(t *testing.T) {
	s, _ := openTest(t, Options{})
	seen := map[string]bool{}
	for range 20 {
		p := newPod("default", "")
		p.GenerateName = "web-"
		out := mustCreate(t, s, pods, p)
		name := out.GetObjectMeta().Name
		suffix, ok := strings.CutPrefix(name, "web-")
		if !ok || len(suffix) != 5 || strings.Trim(suffix, nameAlphabet) != "" {
			t.Fatalf("generated name %q", name)
		}
		if seen[name] {
			t.Fatalf("name %q generated twice", name)
		}
		seen[name] = true
		if _, err := s.Get(context.Background(), pods, "default", name); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGuaranteedUpdate(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	mustCreate(t, s, pods, newPod("default", "web"))

	boom := errors.New("boom")
	if _, err := s.GuaranteedUpdate(ctx, pods, "default", "web", func(api.Object) (api.Object, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("fn error = %v", err)
	}
	if _, err := s.GuaranteedUpdate(ctx, pods, "default", "nope", func(o api.Object) (api.Object, error) { return o, nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing = %v", err)
	}
	rename := func(o api.Object) (api.Object, error) { o.GetObjectMeta().Name = "other"; return o, nil }
	if _, err := s.GuaranteedUpdate(ctx, pods, "default", "web", rename); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("rename = %v", err)
	}

	// A write slipped in between fn's read and its write forces a retry on a fresh copy.
	calls := 0
	out, err := s.GuaranteedUpdate(ctx, pods, "default", "web", func(o api.Object) (api.Object, error) {
		calls++
		if calls == 1 {
			cur, _ := s.Get(ctx, pods, "default", "web")
			cur.GetObjectMeta().Labels = map[string]string{"other": "writer"}
			if _, err := s.Update(ctx, pods, cur); err != nil {
				t.Fatal(err)
			}
		}
		if calls == 2 && o.GetObjectMeta().Labels["other"] != "writer" {
			t.Error("retry did not see the concurrent write")
		}
		o.GetObjectMeta().Annotations = map[string]string{"n": strconv.Itoa(calls)}
		return o, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || out.GetObjectMeta().Labels["other"] != "writer" || out.GetObjectMeta().Annotations["n"] != "2" {
		t.Fatalf("calls %d, result %+v", calls, out.GetObjectMeta())
	}
}

func TestClusterScoped(t *testing.T) {
	s, _ := openTest(t, Options{})
	mustCreate(t, s, namespaces, newNamespace("default"))
	got, err := s.Get(context.Background(), namespaces, "", "default")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetTypeMeta().Kind != "Namespace" {
		t.Fatalf("got %+v", got)
	}
}

func TestClosedStore(t *testing.T) {
	s, _ := openTest(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Create(ctx, pods, newPod("default", "web")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Create after Close = %v", err)
	}
	if _, err := s.Get(ctx, pods, "default", "web"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
	if _, err := s.Watch(ctx, pods, WatchOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Watch after Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Create(ctx, pods, newPod("default", "web")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create = %v", err)
	}
	if _, err := s.Get(context.Background(), pods, "default", "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a cancelled create was stored: %v", err)
	}
}

func TestStats(t *testing.T) {
	s, _ := openTest(t, Options{})
	for i := range 3 {
		mustCreate(t, s, pods, newPod("default", "p"+strconv.Itoa(i)))
	}
	mustCreate(t, s, namespaces, newNamespace("default"))
	st := s.Stats()
	if st.Revision != 4 || st.Objects["pods"] != 3 || st.Objects["namespaces"] != 1 || st.FileBytes <= 0 {
		t.Fatalf("Stats = %+v", st)
	}
}
