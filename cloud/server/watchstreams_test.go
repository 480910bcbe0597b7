package server

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// The master reads every kind through one shared informer factory, so its own watch
// streams to the API are one per kind however many controllers read a kind; the
// all-in-one node reads the same factory, so it opens none of its own. Streams are
// told apart by the user that opens them: the master's client holds the admin token,
// the node joined with the node secret.
func TestMasterWatchesEachKindOnce(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, Config{DataDir: dir, NodeResources: smallNode()})
	cl := adminClient(t, dir)
	kinds := len(s.factory.Resources())
	// The garbage collector reads every kind, so the factory watches them all.
	if kinds != len(api.Kinds()) {
		t.Errorf("the master's factory watches %d kinds (%v), want all %d", kinds, s.factory.Resources(), len(api.Kinds()))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var admin, node int
	for {
		var err error
		admin, node, err = watchersByUser(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		// Streams open one by one after the first lists; wait until all are.
		if admin == kinds && s.factory.Streams() == kinds {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the master holds %d watch streams to itself (its factory counts %d), want one per kind watched: %d; the node agent holds %d",
				admin, s.factory.Streams(), kinds, node)
		case <-tick.C:
		}
	}
	if node != 0 {
		t.Errorf("the all-in-one node holds %d watch streams of its own, want 0 (it reads the master's factory)", node)
	}
	t.Logf("watch streams: %d (one per kind), of the node's own: %d", admin, node)
}

// watchersByUser reads the API server's open watch streams of the admin user and of
// the nodes from /metrics.
func watchersByUser(ctx context.Context, cl *client.Client) (admin, node int, err error) {
	body, err := cl.Raw(ctx, "GET", "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		series, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(series, "cloudbox_apiserver_watchers_by_user{") {
			continue
		}
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("metric %q: %w", sc.Text(), err)
		}
		switch {
		case strings.Contains(series, `user="admin"`):
			admin = int(n)
		case strings.Contains(series, `user="system:node"`):
			node = int(n)
		}
	}
	return admin, node, sc.Err()
}
