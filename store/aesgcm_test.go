package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestSecretsAreSealedOnDiskAndOpenForReaders(t *testing.T) {
	dir := t.TempDir()
	ring, err := OpenKeyRing(filepath.Join(dir, "keys.json"), "secrets")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.db")
	st, err := Open(path, Options{Sealer: ring})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := api.LookupKind("secrets")
	ctx := context.Background()
	sec := k.NewObject().(*api.Secret)
	sec.Name, sec.Namespace = "db", "default"
	sec.Data = map[string][]byte{"password": []byte("correct-horse-battery")}
	watch, err := st.Watch(ctx, k, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, k, sec); err != nil {
		t.Fatal(err)
	}
	if ev := <-watch; !bytes.Contains(ev.Object, []byte("password")) {
		t.Fatalf("a watcher got sealed bytes: %s", ev.Object)
	}
	got, err := st.Get(ctx, k, "default", "db")
	if err != nil || string(got.(*api.Secret).Data["password"]) != "correct-horse-battery" {
		t.Fatalf("get: %v %v", got, err)
	}

	// Rotating the key: old values still open, a write re-seals with the new key.
	if err := ring.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GuaranteedUpdate(ctx, k, "default", "db", func(cur api.Object) (api.Object, error) { return cur, nil }); err != nil {
		t.Fatal(err)
	}
	l, err := st.List(ctx, k, ListOptions{})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("list: %v %v", l, err)
	}
	st.Close()

	// Neither the object nor the event log holds the plaintext (base64 in JSON).
	raw, _ := os.ReadFile(path)
	for _, needle := range []string{"Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5", "correct-horse-battery"} {
		if bytes.Contains(raw, []byte(needle)) {
			t.Fatalf("the data file holds the secret in the clear (%s)", needle)
		}
	}
	// Reopened with the key file, the store reads it; replayed from the log too.
	ring2, err := OpenKeyRing(filepath.Join(dir, "keys.json"), "secrets")
	if err != nil || ring2.Primary() != "k2" {
		t.Fatalf("reopen ring: %v primary %q", err, ring2.Primary())
	}
	st, err = Open(path, Options{Sealer: ring2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	replay, err := st.Watch(ctx, k, WatchOptions{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-replay; ev.Err != nil || !bytes.Contains(ev.Object, []byte("password")) {
		t.Fatalf("replayed event: %v %s", ev.Err, ev.Object)
	}
	// Without the key file the value cannot be read, and the error says why.
	st.Close()
	other, _ := OpenKeyRing(filepath.Join(t.TempDir(), "other.json"), "secrets")
	st, _ = Open(path, Options{Sealer: other})
	if _, err := st.Get(ctx, k, "default", "db"); err == nil {
		t.Fatal("a secret opened without its key")
	}
}
