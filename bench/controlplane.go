// Package bench measures cloudbox against its targets and against a peer measured in
// the same run, because these machines are noisy: a number without its peer means
// little.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// ControlPlaneConfig configures the control-plane benchmark.
type ControlPlaneConfig struct {
	// Binary is the cloudbox executable to start as the server.
	Binary string
	// Creates is how many pods the throughput phase creates. If zero, 3000.
	Creates int
	// Clients is how many concurrent clients create. If zero, 16.
	Clients int
	// Watchers is how many watch streams the latency phase opens. If zero, 100.
	Watchers int
	// Out receives the report.
	Out io.Writer
}

// ControlPlane starts an all-in-one server in a temporary data dir and reports start
// to ready, idle RSS, creates per second with concurrent clients (beside bare bbolt
// doing one fsynced transaction per write, the floor a store without group commit
// would have), and watch delivery latency.
func ControlPlane(ctx context.Context, cfg ControlPlaneConfig) error {
	if cfg.Creates == 0 {
		cfg.Creates = 3000
	}
	if cfg.Clients == 0 {
		cfg.Clients = 16
	}
	if cfg.Watchers == 0 {
		cfg.Watchers = 100
	}
	dir, err := os.MkdirTemp("", "cloudbox-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out := cfg.Out
	fmt.Fprintf(out, "control plane benchmark (data dir %s)\n", dir)

	srv, startup, err := startServer(ctx, cfg.Binary, filepath.Join(dir, "server"))
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Fprintf(out, "start -> ready:            %8.0f ms   (target <= 300 ms)\n", ms(startup))

	// Let start-up garbage settle before reading the idle footprint.
	time.Sleep(2 * time.Second)
	rss, err := rssBytes(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "idle RSS:                 %8.1f MB   (target <= 40 MB)\n", float64(rss)/(1<<20))

	rate, err := createRate(ctx, srv.client, cfg.Creates, cfg.Clients)
	if err != nil {
		return err
	}
	peer, err := boltRate(filepath.Join(dir, "peer.db"), cfg.Creates/3, cfg.Clients)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "creates/s, %d clients:    %8.0f /s   (target >= 1500/s)\n", cfg.Clients, rate)
	fmt.Fprintf(out, "  peer: bare bbolt, one fsynced tx per write, %d writers: %.0f /s; ratio %.2f\n", cfg.Clients, peer, rate/peer)

	p50, p99, err := watchLatency(ctx, srv.client, cfg.Watchers, 200)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "watch delivery, %d watchers: p50 %.1f ms, p99 %.1f ms (create call start -> event at each watcher)\n", cfg.Watchers, ms(p50), ms(p99))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type server struct {
	cmd    *exec.Cmd
	client *client.Client
	done   chan struct{}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// startServer runs `cloudbox server` on a free loopback port and returns once
// /readyz answers, with the time that took.
func startServer(ctx context.Context, bin, dataDir string, extra ...string) (*server, time.Duration, error) {
	start := time.Now()
	args := append([]string{"--log-level", "warn", "server", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--node-name", "bench-node"}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	// Polling is the measurement here: the first moment the server answers ready.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, 0, errors.New("server exited during start-up")
		default:
		}
		if s.client == nil {
			if cfg, err := client.LoadConfigFile(filepath.Join(dataDir, "admin.config")); err == nil {
				s.client, _ = client.New(cfg)
			}
		}
		if s.client != nil {
			if body, err := s.client.Raw(ctx, http.MethodGet, "/readyz"); err == nil {
				body.Close()
				return s, time.Since(start), nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.stop()
	return nil, 0, errors.New("server not ready after 30s")
}

func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// benchPod is a pod no scheduler takes (schedulerName names none), so the phase
// measures the API and the store alone.
func benchPod(name string) *api.Pod {
	k, _ := api.LookupKind("pods")
	p := k.NewObject().(*api.Pod)
	p.Name, p.Namespace = name, "default"
	p.Labels = map[string]string{"bench": "1"}
	p.Spec.SchedulerName = "bench-none"
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox:1.36", Command: []string{"sleep", "3600"}}}
	return p
}

func createRate(ctx context.Context, cl *client.Client, n, clients int) (float64, error) {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if _, err := cl.Create(ctx, benchPod(fmt.Sprintf("bench-%d", i))); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// boltRate is the peer: bare bbolt with one fsynced transaction per write.
func boltRate(path string, n, writers int) (float64, error) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	value := make([]byte, 600) // about one pod's JSON
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				_ = db.Update(func(tx *bolt.Tx) error {
					b, err := tx.CreateBucketIfNotExists([]byte("pods"))
					if err != nil {
						return err
					}
					id, _ := b.NextSequence()
					return b.Put([]byte(strconv.FormatUint(id, 10)), value)
				})
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), nil
}

// watchLatency opens watchers, creates pods one at a time, and measures from the
// start of each create call to each watcher's receipt of the event.
func watchLatency(ctx context.Context, cl *client.Client, watchers, events int) (p50, p99 time.Duration, err error) {
	podKind, _ := api.LookupKind("pods")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := cl.List(ctx, podKind, "default", client.ListOptions{Limit: 1})
	if err != nil {
		return 0, 0, err
	}
	var sent sync.Map // name -> time.Time
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for i := 0; i < watchers; i++ {
		ch, err := cl.Watch(ctx, podKind, "default", client.ListOptions{ResourceVersion: l.ResourceVersion, LabelSelector: "watch=1"})
		if err != nil {
			return 0, 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := 0
			for ev := range ch {
				if ev.Err != nil || ev.Type != "ADDED" {
					continue
				}
				if t, ok := sent.Load(ev.Object.GetObjectMeta().Name); ok {
					d := time.Since(t.(time.Time))
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
				if got++; got == events {
					return
				}
			}
		}()
	}
	for i := 0; i < events; i++ {
		p := benchPod(fmt.Sprintf("watch-%d", i))
		p.Labels = map[string]string{"watch": "1"}
		sent.Store(p.Name, time.Now())
		if _, err := cl.Create(ctx, p); err != nil {
			return 0, 0, err
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		return 0, 0, errors.New("watchers did not receive every event within 60s")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return 0, 0, errors.New("no watch events received")
	}
	return lat[len(lat)/2], lat[len(lat)*99/100], nil
}
