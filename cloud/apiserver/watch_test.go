package apiserver

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// A burst of concurrent writes reaches a watcher whole and in revision order, though
// the stream is flushed per burst rather than per event; and an event that the
// selector hides at the end of a burst does not hold back the ones before it.
func TestWatchDeliversBurstsWholeAndInOrder(t *testing.T) {
	ts, st := newTestServer(t)
	podKind := api.KindOfType[*api.Pod]()
	from := st.Revision()
	next := watchLines(t, ts, "labelSelector=burst%3D1&resourceVersion="+strconv.FormatUint(from, 10))

	const writers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
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

	seen := map[string]bool{}
	last := from
	for range writers * each * 4 / 5 {
		typ, p := next()
		rv, err := strconv.ParseUint(p.ResourceVersion, 10, 64)
		if err != nil || typ != "ADDED" || rv <= last || seen[p.Name] || p.Labels["burst"] != "1" {
			t.Fatalf("event %s %s at %q after revision %d (seen before: %v)", typ, p.Name, p.ResourceVersion, last, seen[p.Name])
		}
		seen[p.Name], last = true, rv
	}
}
