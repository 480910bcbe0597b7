package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/client"
)

// Registration that the API refuses is retried with doubling back-off on the
// agent's clock, so a fake clock drives it, and ends with the agent's context.
func TestRegistrationBacksOffOnTheAgentsClock(t *testing.T) {
	h := newHarness(t)
	stranger, err := client.New(client.Config{Server: h.url, CACert: h.ca, Token: "not-a-token"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Client: stranger, NodeName: h.node, Resources: &HostResources{Hostname: "host-1", CPUs: 1, MemoryBytes: 1 << 30, Pods: 10},
		Clock: h.clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended := make(chan error, 1)
	go func() { ended <- a.Run(ctx) }()

	for _, want := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		select {
		case <-h.clk.Pending():
		case err := <-ended:
			t.Fatalf("Run ended before a retry was armed: %v", err)
		case <-time.After(testTimeout):
			t.Fatal("no retry was armed after a refused registration")
		}
		if got, _ := h.clk.StepNext(); got != want {
			t.Errorf("back-off step %v, want %v", got, want)
		}
	}
	select {
	case <-a.Registered():
		t.Fatal("registered with a token the API refuses")
	default:
	}
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v, want %v", err, context.Canceled)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not end with its context")
	}
}
