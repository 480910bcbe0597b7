package client

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/apiserver"
	"github.com/cloudbox/cloudbox/store"
)

func TestParseWarnings(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   []string
	}{
		{"one", []string{`299 - "spec.x: unknown field"`}, []string{"spec.x: unknown field"}},
		{"escapes", []string{`299 - "did you mean \"ports\"? a\\b"`}, []string{`did you mean "ports"? a\b`}},
		{"several headers", []string{`299 - "a"`, `299 - "b"`}, []string{"a", "b"}},
		{"several in one header, with a date", []string{`299 - "a, still a" "Sat, 01 Jan 2000 00:00:00 GMT", 199 agent "b"`}, []string{"a, still a", "b"}},
		{"malformed", []string{`nonsense`, `299 -`, `299 - "unterminated`, `2999 - "x"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseWarnings(tt.values); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestClientHandsOnServerWarnings runs a real API server over a real store and checks
// that its Warning headers reach Config.Warnings.
func TestClientHandsOnServerWarnings(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := apiserver.New(apiserver.Config{Store: st, Tokens: &apiserver.Tokens{Admin: "t", NodeSecret: "n"}})
	srv.SetReady(true)
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(func() { srv.Shutdown(); ts.Close() })

	var mu sync.Mutex
	var got []string
	cl, err := New(Config{Server: ts.URL, Token: "t", CACert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}),
		Warnings: func(text string) { mu.Lock(); got = append(got, text); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := api.LookupKind("namespaces")
	team := k.NewObject().(*api.Namespace)
	team.Name = "team"
	if _, err := cl.Create(context.Background(), team); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("warnings for a well-formed object: %q", got)
	}
	if _, err := cl.Patch(context.Background(), k, "", "team", "", []byte(`{"metadata": {"lables": {"a": "b"}}}`)); err != nil {
		t.Fatal(err)
	}
	want := []string{`v1 Namespace team: metadata.lables: unknown field (did you mean "labels"?)`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
}
