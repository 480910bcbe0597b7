package scheduler

import (
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// fakeClock is the clock border of the retry queue.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func names(pods []*api.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name+"@"+p.ResourceVersion)
	}
	return out
}

func TestRetryQueueBackoff(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	q := newRetryQueue(time.Second, 30*time.Second, clock.now)
	p := pod("p", "", "")
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i, w := range want {
		d, ok := q.failed(p)
		if !ok || d != w*time.Second {
			t.Fatalf("failure %d: wait %v, want %v", i+1, d, w*time.Second)
		}
		if got := q.due(); len(got) != 0 {
			t.Fatalf("failure %d: due at once: %v", i+1, names(got))
		}
		if next, ok := q.next(); !ok || next != d {
			t.Fatalf("failure %d: next = %v, %v; want %v", i+1, next, ok, d)
		}
		clock.advance(d - time.Millisecond)
		if got := q.due(); len(got) != 0 {
			t.Fatalf("failure %d: due early", i+1)
		}
		clock.advance(time.Millisecond)
		if got := q.due(); len(got) != 1 {
			t.Fatalf("failure %d: not due after %v", i+1, d)
		}
		if _, ok := q.next(); ok {
			t.Fatal("a held pod counts as waiting")
		}
	}
	q.forget(podKey(p))
	if q.len() != 0 {
		t.Fatal("forget left the pod queued")
	}
	if d, _ := q.failed(p); d != time.Second {
		t.Fatalf("after forget the backoff restarts at %v, want 1s", d)
	}
}

func TestRetryQueueKeepsTheLatestVersion(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	q := newRetryQueue(time.Second, 30*time.Second, clock.now)
	v1 := pod("p", "", "", func(p *api.Pod) { p.ResourceVersion = "1" })
	v2 := pod("p", "", "", func(p *api.Pod) { p.ResourceVersion = "2" })
	other := pod("q", "", "", func(p *api.Pod) { p.ResourceVersion = "7" })
	q.failed(v1)
	q.failed(other)
	q.failed(v2)
	if q.len() != 2 {
		t.Fatalf("%d entries, want 2", q.len())
	}
	clock.advance(time.Hour)
	got := names(q.due())
	if len(got) != 2 || got[0] != "q@7" || got[1] != "p@2" {
		t.Fatalf("due %v, want [q@7 p@2] (longest waiting first)", got)
	}
}

func TestRetryQueueRetryAll(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	q := newRetryQueue(time.Second, 30*time.Second, clock.now)
	a, b := pod("a", "", ""), pod("b", "", "")
	for range 3 {
		q.failed(a)
	}
	q.failed(b)
	clock.advance(time.Second)
	held := q.due() // b is due and being attempted; a waits 4s
	if len(held) != 1 || held[0].Name != "b" {
		t.Fatalf("due %v, want [b]", names(held))
	}
	q.retryAll()
	select {
	case <-q.wake:
	default:
		t.Fatal("retryAll did not wake Run")
	}
	if got := q.due(); len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("after retryAll due %v, want [a]", names(got))
	}
	// b was held during retryAll: its failure makes it due at once, not after 2s.
	if d, _ := q.failed(b); d != 0 {
		t.Fatalf("kicked pod waits %v", d)
	}
	// a's failure count survived: its next wait is 8s.
	if d, _ := q.failed(a); d != 8*time.Second {
		t.Fatalf("a waits %v, want 8s", d)
	}
}

func TestRetryQueueDeleted(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	q := newRetryQueue(time.Second, 30*time.Second, clock.now)
	p := pod("p", "", "")
	q.failed(p)
	q.deleted(podKey(p))
	if q.len() != 0 || !q.isGone(podKey(p)) {
		t.Fatal("deleted pod still queued")
	}
	if _, ok := q.failed(p); ok || q.len() != 0 {
		t.Fatal("a stale copy of a deleted pod was queued")
	}
	clock.advance(goneTTL + time.Second)
	q.deleted("other")
	if q.isGone(podKey(p)) {
		t.Fatal("the deleted pod is remembered forever")
	}
}

func TestRetryQueueRelease(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	q := newRetryQueue(time.Second, 30*time.Second, clock.now)
	q.failed(pod("p", "", ""))
	clock.advance(time.Second)
	if len(q.due()) != 1 || len(q.due()) != 0 {
		t.Fatal("a held pod was handed out twice")
	}
	q.release()
	if got := q.due(); len(got) != 1 {
		t.Fatalf("released pod not due: %v", names(got))
	}
}
