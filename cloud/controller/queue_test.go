package controller

import (
	"sync"
	"testing"
	"time"
)

func TestQueueDeduplicatesAndRequeuesWhileProcessing(t *testing.T) {
	q := NewQueue()
	q.Add("a")
	q.Add("a")
	q.Add("b")
	if q.Len() != 2 {
		t.Fatalf("len %d, want 2", q.Len())
	}
	k, _ := q.Get()
	if k != "a" {
		t.Fatalf("got %q first", k)
	}
	q.Add("a") // changed while being processed
	if q.Len() != 1 {
		t.Fatalf("a key being processed was queued twice: len %d", q.Len())
	}
	q.Done("a")
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		k, _ := q.Get()
		got[k] = true
		q.Done(k)
	}
	if !got["a"] || !got["b"] {
		t.Fatalf("after Done: %v", got)
	}
}

func TestQueueBackoffAndShutdown(t *testing.T) {
	q := NewQueue()
	q.BaseDelay = time.Millisecond
	q.AddRateLimited("x")
	q.AddRateLimited("x")
	if q.Failures("x") != 2 {
		t.Fatalf("failures %d", q.Failures("x"))
	}
	k, ok := q.Get() // arrives after its back-off
	if !ok || k != "x" {
		t.Fatalf("Get = %q %v", k, ok)
	}
	q.Done(k)
	q.Forget("x")
	if q.Failures("x") != 0 {
		t.Fatal("Forget did not reset the back-off")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, ok := q.Get(); !ok {
				return
			}
		}
	}()
	q.ShutDown()
	wg.Wait()
	q.Add("y")
	if q.Len() != 0 {
		t.Fatal("Add after ShutDown queued a key")
	}
}
