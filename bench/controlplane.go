// Package bench measures cloudbox against its targets and against a peer measured in
// the same run, because these machines are noisy: a number without its peer means
// little.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

// ControlPlane starts an all-in-one server in a temporary data dir and reports, each
// beside a peer measured in the same run: start to ready (beside the same binary's
// exec to exit), idle RSS (beside the same binary as a client holding a watch),
// creates per second with concurrent clients (beside bare bbolt doing one fsynced
// transaction per write, the floor a store without group commit would have), and
// watch delivery latency (beside the create call's own round trip).
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

	startFloor, err := execToExit(ctx, cfg.Binary)
	if err != nil {
		return err
	}
	// A bridge and addresses of its own, so that it meets no other server's.
	srv, startup, err := startServer(ctx, cfg.Binary, filepath.Join(dir, "server"), "/cloudbox-bench-controlplane",
		"--bridge", fmt.Sprintf("cbxbcp%d", os.Getpid()%100000), "--cluster-cidr", "10.197.0.0/16")
	if err != nil {
		return err
	}
	defer srv.remove()
	fmt.Fprintf(out, "start -> ready:            %8.0f ms   (target <= 300 ms)\n", ms(startup))
	fmt.Fprintf(out, "  peer: the same binary, exec -> exit of 'cloudbox --version': %.0f ms; ratio %.1f\n", ms(startFloor), float64(startup)/float64(startFloor))

	// Let start-up garbage settle before reading the idle footprint.
	time.Sleep(2 * time.Second)
	mem, err := rssOf(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	floor, err := watcherRSS(ctx, cfg.Binary, filepath.Join(srv.dataDir, "admin.config"))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "idle RSS:                 %8.1f MB   (target <= 25 MB; %s)\n", float64(mem.total)/(1<<20), mem.split())
	fmt.Fprintf(out, "  peer: the same binary as a client holding a watch ('cloudbox get nodes -w -o name'): %.1f MB (%s); ratio %.2f\n",
		float64(floor.total)/(1<<20), floor.split(), float64(mem.total)/float64(floor.total))

	// The peer runs half before and half after the creates, so that a change in the
	// machine's load during the run weighs on both figures alike.
	peerDB := filepath.Join(dir, "peer.db")
	peerBefore, err := boltWrites(peerDB, cfg.Creates/6, cfg.Clients)
	if err != nil {
		return err
	}
	rate, err := createRate(ctx, srv.client, cfg.Creates, cfg.Clients)
	if err != nil {
		return err
	}
	peerAfter, err := boltWrites(peerDB, cfg.Creates/6, cfg.Clients)
	if err != nil {
		return err
	}
	peer := float64(2*(cfg.Creates/6)) / (peerBefore + peerAfter).Seconds()
	fmt.Fprintf(out, "creates/s, %d clients:    %8.0f /s   (target >= 1500/s)\n", cfg.Clients, rate)
	fmt.Fprintf(out, "  peer: bare bbolt, one fsynced tx per write, %d writers, half before and half after: %.0f /s; ratio %.2f\n", cfg.Clients, peer, rate/peer)

	lat, err := watchLatency(ctx, srv.client, cfg.Watchers, 200)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "watch delivery, %d watchers: p50 %.1f ms, p99 %.1f ms (create call start -> event at each watcher)\n",
		cfg.Watchers, ms(lat.deliveryP50), ms(lat.deliveryP99))
	fmt.Fprintf(out, "  peer: the create calls' own round trip, same run: p50 %.1f ms, p99 %.1f ms; ratio at p50 %.2f\n",
		ms(lat.createP50), ms(lat.createP99), float64(lat.deliveryP50)/float64(lat.createP50))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rss is a process's resident memory, split as the kernel counts it: anonymous
// pages (heap, stacks: what the process itself costs) and file pages (mostly the
// binary's own text and data, shared with every process of the same binary).
type rss struct {
	total, anon, file int64 // bytes
}

func (r rss) split() string {
	return fmt.Sprintf("anon %.1f MB + file %.1f MB", float64(r.anon)/(1<<20), float64(r.file)/(1<<20))
}

func rssOf(pid int) (rss, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rss{}, err
	}
	var r rss
	fields := map[string]*int64{"VmRSS": &r.total, "RssAnon": &r.anon, "RssFile": &r.file}
	for _, line := range strings.Split(string(b), "\n") {
		name, v, _ := strings.Cut(line, ":")
		dst, ok := fields[name]
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return rss{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		*dst = kb * 1024
		delete(fields, name)
	}
	if len(fields) > 0 {
		return rss{}, fmt.Errorf("/proc/%d/status has no VmRSS, RssAnon or RssFile", pid)
	}
	return r, nil
}

// benchPod is a pod no scheduler takes (schedulerName names none), so the phase
// measures the API and the store alone.
func benchPod(name string) *api.Pod {
	p := client.NewObject[*api.Pod]()
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

// boltWrites is the peer: bare bbolt with one fsynced transaction per write; it
// returns how long n writes took.
func boltWrites(path string, n, writers int) (time.Duration, error) {
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
	return time.Since(start), nil
}

// execToExit times `bin --version` from exec to exit, the least a process of this
// binary costs to start (page-in, the runtime, every package's init); the best of
// five.
func execToExit(ctx context.Context, bin string) (time.Duration, error) {
	best := time.Duration(0)
	for range 5 {
		start := time.Now()
		if out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s --version: %v: %s", bin, err, out)
		}
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	return best, nil
}

// watcherRSS runs the binary as a client watching nodes and returns its RSS once the
// watch is open: the footprint of the binary itself with one TLS connection.
func watcherRSS(ctx context.Context, bin, config string) (rss, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", config, "get", "nodes", "-w", "-o", "name")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return rss{}, err
	}
	if err := cmd.Start(); err != nil {
		return rss{}, err
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	// The node's name is printed (-o name writes unbuffered) once the list is in;
	// the watch opens next and settles as the server's did.
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		return rss{}, fmt.Errorf("cloudbox get nodes -w: %w", err)
	}
	time.Sleep(2 * time.Second)
	return rssOf(cmd.Process.Pid)
}

// latencies are the percentiles of one watchLatency run.
type latencies struct {
	deliveryP50, deliveryP99 time.Duration // create call start -> event at a watcher
	createP50, createP99     time.Duration // create call start -> its response
}

// watchLatency opens watchers, creates pods one at a time, and measures from the
// start of each create call to each watcher's receipt of the event, and to the
// call's own response.
func watchLatency(ctx context.Context, cl *client.Client, watchers, events int) (latencies, error) {
	podKind := api.KindOfType[*api.Pod]()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := cl.List(ctx, podKind, "default", client.ListOptions{Limit: 1})
	if err != nil {
		return latencies{}, err
	}
	var sent sync.Map // name -> time.Time
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for i := 0; i < watchers; i++ {
		ch, err := cl.Watch(ctx, podKind, "default", client.ListOptions{ResourceVersion: l.ResourceVersion, LabelSelector: "watch=1"})
		if err != nil {
			return latencies{}, err
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
	var creates []time.Duration
	for i := 0; i < events; i++ {
		p := benchPod(fmt.Sprintf("watch-%d", i))
		p.Labels = map[string]string{"watch": "1"}
		start := time.Now()
		sent.Store(p.Name, start)
		if _, err := cl.Create(ctx, p); err != nil {
			return latencies{}, err
		}
		creates = append(creates, time.Since(start))
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		return latencies{}, errors.New("watchers did not receive every event within 60s")
	}
	if len(lat) == 0 {
		return latencies{}, errors.New("no watch events received")
	}
	return latencies{deliveryP50: percentile(lat, 50), deliveryP99: percentile(lat, 99),
		createP50: percentile(creates, 50), createP99: percentile(creates, 99)}, nil
}
