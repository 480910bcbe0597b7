package server

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"
)

// stopRecorder makes parts that run until their context ends and record the order in
// which they return.
type stopRecorder struct {
	mu      sync.Mutex
	stopped []string
}

func (r *stopRecorder) part(name string, errAfterStop error) part {
	return part{name, func(ctx context.Context) error {
		<-ctx.Done()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.stopped = append(r.stopped, name)
		return errAfterStop
	}}
}

func TestRunPartsStopsInReverseOrder(t *testing.T) {
	var r stopRecorder
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// An error a part returns once stopped (the agent's ctx.Err()) is no failure.
		done <- runParts(ctx, zaptest.NewLogger(t), []part{r.part("a", nil), r.part("b", context.Canceled), r.part("c", nil)})
	}()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("runParts = %v, want nil", err)
	}
	if want := []string{"c", "b", "a"}; !slices.Equal(r.stopped, want) {
		t.Errorf("stopped %v, want %v", r.stopped, want)
	}
}

func TestRunPartsStopsTheOthersWhenOneFails(t *testing.T) {
	var r stopRecorder
	boom := errors.New("boom")
	failing := part{"failing", func(context.Context) error { return boom }}
	err := runParts(context.Background(), zaptest.NewLogger(t), []part{r.part("a", nil), failing, r.part("c", nil)})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing") {
		t.Errorf("runParts = %v, want the failing part's error, named", err)
	}
	if want := []string{"c", "a"}; !slices.Equal(r.stopped, want) {
		t.Errorf("stopped %v, want %v", r.stopped, want)
	}
}

func TestRunPartsLetsAPartEndEarly(t *testing.T) {
	var r stopRecorder
	ctx, cancel := context.WithCancel(context.Background())
	oneShot := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runParts(ctx, zaptest.NewLogger(t), []part{r.part("a", nil),
			{"one-shot", func(context.Context) error { close(oneShot); return nil }}, r.part("c", nil)})
	}()
	<-oneShot
	select {
	case err := <-done:
		t.Fatalf("runParts returned %v when a part ended early without error", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("runParts = %v, want nil", err)
	}
	if want := []string{"c", "a"}; !slices.Equal(r.stopped, want) {
		t.Errorf("stopped %v, want %v", r.stopped, want)
	}
}
