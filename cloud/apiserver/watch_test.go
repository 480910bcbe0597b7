package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

// A burst of concurrent writes reaches each watcher whole and in revision order,
// though the stream is flushed per burst rather than per event; an event that the
// selector hides at the end of a burst does not hold back the ones before it; and
// watches with different selectors, which share the decoding of each event, each get
// their own events.
func TestWatchDeliversBurstsWholeAndInOrder(t *testing.T) {
	ts, st := newTestServer(t)
	podKind := api.KindOfType[*api.Pod]()
	from := st.Revision()
	fromRV := "&resourceVersion=" + strconv.FormatUint(from, 10)
	watches := map[string]func() (string, api.Pod){
		"1": watchLines(t, ts, "labelSelector=burst%3D1"+fromRV),
		"0": watchLines(t, ts, "labelSelector=burst%3D0"+fromRV),
	}

	const writers, each = 8, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := podKind.NewObject().(*api.Pod)
				p.Namespace, p.Name = "default", fmt.Sprintf("b-%d-%d", w, i)
				p.Labels = map[string]string{"burst": "1"}
				if i%5 == 4 {
					p.Labels["burst"] = "0" // hidden by the selector
				}
				p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox"}}
				if _, err := st.Create(context.Background(), podKind, p); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for label, n := range map[string]int{"1": writers * each * 4 / 5, "0": writers * each / 5} {
		next := watches[label]
		seen := map[string]bool{}
		last := from
		for range n {
			typ, p := next()
			rv, err := strconv.ParseUint(p.ResourceVersion, 10, 64)
			if err != nil || typ != "ADDED" || rv <= last || seen[p.Name] || p.Labels["burst"] != label {
				t.Fatalf("burst=%s watch: event %s %s (burst=%s) at %q after revision %d (seen before: %v)",
					label, typ, p.Name, p.Labels["burst"], p.ResourceVersion, last, seen[p.Name])
			}
			seen[p.Name], last = true, rv
		}
	}
}

// Watches asking for the same event get one decoded object; another revision gets its
// own, also when it falls in the same slot.
func TestWatchDecodesShareOneDecodePerEvent(t *testing.T) {
	var d watchDecodes
	event := func(rev uint64) store.Event {
		return store.Event{Type: store.Added, Revision: rev, Resource: "pods", Key: "default/p",
			Object: []byte(fmt.Sprintf(`{"metadata":{"name":"p","namespace":"default","resourceVersion":"%d"}}`, rev))}
	}
	objs := make([]api.Object, 8)
	var wg sync.WaitGroup
	for i := range objs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := d.decode(event(7))
			if err != nil {
				t.Error(err)
			}
			objs[i] = o
		}()
	}
	wg.Wait()
	for _, o := range objs[1:] {
		if o != objs[0] {
			t.Fatalf("watches got different objects for one event")
		}
	}
	other, err := d.decode(event(7 + watchDecodeSlots))
	if err != nil {
		t.Fatal(err)
	}
	if other == objs[0] || other.GetObjectMeta().ResourceVersion != strconv.Itoa(7+watchDecodeSlots) {
		t.Errorf("revision %d got the object of revision 7", 7+watchDecodeSlots)
	}
}

// client-go's watch-list (sendInitialEvents=true, on by default since 1.32) gets the
// current objects, then a bookmark annotated k8s.io/initial-events-end at the list's
// revision, then live events; without that bookmark a client waits for ever.
func TestWatchListEndsItsInitialEventsWithABookmark(t *testing.T) {
	ts, _ := newTestServer(t)
	a := call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("one", nil))
	var one api.Pod
	_ = json.Unmarshal(a.body, &one)
	next := watchLines(t, ts, "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion="+one.ResourceVersion)
	if typ, p := next(); typ != "ADDED" || p.Name != "one" {
		t.Fatalf("first event %s %s, want ADDED one", typ, p.Name)
	}
	typ, p := next()
	if typ != "BOOKMARK" || p.Annotations["k8s.io/initial-events-end"] != "true" || p.ResourceVersion != one.ResourceVersion {
		t.Fatalf("second event %s %q annotations %v, want the initial-events-end BOOKMARK at %s", typ, p.ResourceVersion, p.Annotations, one.ResourceVersion)
	}
	call(t, ts, testToken, "POST", podsPath, "application/json", podJSON("two", nil))
	if typ, p := next(); typ != "ADDED" || p.Name != "two" {
		t.Fatalf("live event %s %s, want ADDED two", typ, p.Name)
	}
}
