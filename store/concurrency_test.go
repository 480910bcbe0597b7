package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestConcurrentCreates(t *testing.T) {
	s, _ := openTest(t, Options{})
	const workers, each = 16, 50
	revs := make([][]uint64, workers)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				out, err := s.Create(context.Background(), pods, newPod("default", fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					errs <- err
					return
				}
				rv, err := strconv.ParseUint(out.GetObjectMeta().ResourceVersion, 10, 64)
				if err != nil {
					errs <- err
					return
				}
				revs[w] = append(revs[w], rv)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	seen := map[uint64]bool{}
	for w, rs := range revs {
		for i, rv := range rs {
			if seen[rv] {
				t.Fatalf("revision %d given twice", rv)
			}
			seen[rv] = true
			// A goroutine's writes are sequential, so their revisions must rise.
			if i > 0 && rv <= rs[i-1] {
				t.Fatalf("worker %d: revision %d after %d", w, rv, rs[i-1])
			}
		}
	}
	if len(seen) != workers*each || s.Revision() != workers*each {
		t.Fatalf("%d revisions, store at %d; want %d", len(seen), s.Revision(), workers*each)
	}
	res, err := s.List(context.Background(), pods, ListOptions{})
	if err != nil || len(res.Items) != workers*each {
		t.Fatalf("List: %d items, %v", len(res.Items), err)
	}
}

func TestConcurrentGuaranteedUpdate(t *testing.T) {
	s, _ := openTest(t, Options{})
	mustCreate(t, s, pods, newPod("default", "counter"))
	const workers, each = 8, 25
	increment := func(o api.Object) (api.Object, error) {
		m := o.GetObjectMeta()
		n, _ := strconv.Atoi(m.Labels["n"])
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		m.Labels["n"] = strconv.Itoa(n + 1)
		return o, nil
	}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := s.GuaranteedUpdate(context.Background(), pods, "default", "counter", increment); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), pods, "default", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if n := got.GetObjectMeta().Labels["n"]; n != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s, want %d", n, workers*each)
	}
}

// TestBatchIsolatesFailures queues writes that fail next to writes that succeed, in
// the same batches, and checks that each gets its own answer.
func TestBatchIsolatesFailures(t *testing.T) {
	s, _ := openTest(t, Options{})
	mustCreate(t, s, pods, newPod("default", "taken"))
	var wg sync.WaitGroup
	results := make([]error, 64)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("p%d", i)
			if i%2 == 0 {
				name = "taken"
			}
			_, results[i] = s.Create(context.Background(), pods, newPod("default", name))
		}()
	}
	wg.Wait()
	for i, err := range results {
		if (i%2 == 0) != (err != nil) {
			t.Fatalf("write %d: err = %v", i, err)
		}
	}
	if s.Revision() != 33 {
		t.Fatalf("revision = %d, want 33", s.Revision())
	}
}

// TestCloseFinishesPendingWrites closes the store while writes are in flight: each
// write either succeeds (and is then in the file) or fails with ErrClosed.
func TestCloseFinishesPendingWrites(t *testing.T) {
	s, path := openTest(t, Options{})
	var wg sync.WaitGroup
	acked := make(chan string, 256)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				if _, err := s.Create(context.Background(), pods, newPod("default", name)); err != nil {
					if err != ErrClosed {
						t.Errorf("Create: %v", err)
					}
					return
				}
				acked <- name
				if i == 20 {
					return
				}
			}
		}()
	}
	// Close once some writes are through, while the rest are in flight.
	select {
	case name := <-acked:
		acked <- name
	case <-time.After(waitTimeout):
		t.Fatal("no write acknowledged")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(acked)

	s2 := openAt(t, path, Options{})
	for name := range acked {
		if _, err := s2.Get(context.Background(), pods, "default", name); err != nil {
			t.Fatalf("acknowledged %s: %v", name, err)
		}
	}
}

// TestPoisonedOpIsRetriedAlone mixes good creates with ops that fail, or panic, after
// they have written: those writes must vanish, and every good create must commit.
func TestPoisonedOpIsRetriedAlone(t *testing.T) {
	s, _ := openTest(t, Options{})
	boom := errors.New("boom")
	const n = 48
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("p%d", i)
			switch i % 3 {
			case 0:
				_, errs[i] = s.Create(context.Background(), pods, newPod("default", name))
			case 1:
				_, errs[i] = s.write(context.Background(), func(w *writeTx) (api.Object, error) {
					if err := w.record(pods, "default/"+name, Added, newPod("default", name)); err != nil {
						return nil, err
					}
					return nil, boom
				})
			case 2:
				_, errs[i] = s.write(context.Background(), func(w *writeTx) (api.Object, error) {
					if err := w.record(pods, "default/"+name, Added, newPod("default", name)); err != nil {
						return nil, err
					}
					panic("bug")
				})
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%3 == 0) != (err == nil) {
			t.Fatalf("op %d: err = %v", i, err)
		}
	}
	res, err := s.List(context.Background(), pods, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != n/3 || s.Revision() != n/3 {
		t.Fatalf("%d objects at revision %d, want %d", len(res.Items), s.Revision(), n/3)
	}
	for _, o := range res.Items {
		var i int
		fmt.Sscanf(o.GetObjectMeta().Name, "p%d", &i)
		if i%3 != 0 {
			t.Fatalf("a failed op's write survived: %s", o.GetObjectMeta().Name)
		}
	}
	// The log has exactly the good creates, densely.
	ch, err := s.Watch(t.Context(), pods, WatchOptions{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	for rev := uint64(2); rev <= n/3; rev++ {
		if ev := next(t, ch); ev.Revision != rev {
			t.Fatalf("event %+v, want %d", ev, rev)
		}
	}
}
