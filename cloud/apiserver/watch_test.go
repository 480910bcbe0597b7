package apiserver

import (
	"context"
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
