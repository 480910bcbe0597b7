package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// TestTypedCallsRoundTrip drives one ConfigMap through every typed call against a
// real server: each answers with the Go type asked for, and the kind is T's.
func TestTypedCallsRoundTrip(t *testing.T) {
	ctx := context.Background()
	cl := newTestAPI(t)

	cm := client.NewObject[*api.ConfigMap]()
	if cm.Kind != "ConfigMap" || cm.APIVersion != "v1" {
		t.Fatalf("NewObject TypeMeta = %q %q, want ConfigMap v1", cm.Kind, cm.APIVersion)
	}
	cm.Namespace, cm.Name = "default", "typed"
	cm.Data = map[string]string{"a": "1"}
	created, err := client.Create(ctx, cl, cm)
	if err != nil {
		t.Fatal(err)
	}
	if created.UID == "" || created.Data["a"] != "1" {
		t.Fatalf("Create answered %+v", created)
	}

	created.Data["a"] = "2"
	updated, err := client.Update(ctx, cl, created)
	if err != nil {
		t.Fatal(err)
	}
	modified, err := client.Modify(ctx, cl, "default", "typed", func(c *api.ConfigMap) error {
		c.Data["b"] = "3"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if modified.ResourceVersion == updated.ResourceVersion {
		t.Fatalf("Modify did not write: resourceVersion stayed %s", modified.ResourceVersion)
	}

	got, err := client.Get[*api.ConfigMap](ctx, cl, "default", "typed")
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["a"] != "2" || got.Data["b"] != "3" {
		t.Fatalf("Get read data %v, want a=2 b=3", got.Data)
	}

	stop := errors.New("stop")
	if _, err := client.Modify(ctx, cl, "default", "typed", func(*api.ConfigMap) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Modify with a refusing mutate: err = %v, want %v", err, stop)
	}

	list, err := client.ListTyped[*api.ConfigMap](ctx, cl, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "typed" {
		t.Fatalf("ListTyped = %v, want the one ConfigMap", list)
	}

	if _, err := client.Delete[*api.ConfigMap](ctx, cl, "default", "typed"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get[*api.ConfigMap](ctx, cl, "default", "typed"); !client.IsNotFound(err) {
		t.Fatalf("Get after Delete: err = %v, want NotFound", err)
	}
}
