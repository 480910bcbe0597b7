package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/testimage"
)

// PodsConfig configures the pod start benchmark.
type PodsConfig struct {
	// Binary is the cloudbox executable to start as the server.
	Binary string
	// Pods is how many pods the sequential phase starts. If zero, 50.
	Pods int
	// Burst is how many pods the burst phase creates at once. If zero, 100.
	Burst int
	// Peers is how many runs of each peer (runc, podman) are timed. If zero, 20.
	Peers int
	Out   io.Writer
}

// Pods measures, in one run: bare `runc run` of a busybox rootfs, `podman run` of
// the same image, cloudbox pod create → Running (p50, p99), create → Succeeded for a
// one-shot pod, and a burst of pods created at once until all run.
func Pods(ctx context.Context, cfg PodsConfig) error {
	if cfg.Pods == 0 {
		cfg.Pods = 50
	}
	if cfg.Burst == 0 {
		cfg.Burst = 100
	}
	if cfg.Peers == 0 {
		cfg.Peers = 20
	}
	out := cfg.Out
	dir, err := os.MkdirTemp("", "cloudbox-bench-pods-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tarPath := filepath.Join(dir, "busybox.tar")
	if err := testimage.WriteBusyboxTarball(tarPath, "docker.io/library/busybox:1.36"); err != nil {
		return err
	}
	fmt.Fprintln(out, "pod start benchmark")

	runcRuns, err := runcRun(ctx, dir, cfg.Peers)
	runcP50, runcP99 := percentile(runcRuns, 50), percentile(runcRuns, 99)
	if err != nil {
		fmt.Fprintf(out, "bare runc run:            unavailable (%v)\n", err)
	} else {
		fmt.Fprintf(out, "bare runc run (true):     p50 %6.1f ms, p99 %6.1f ms   (%d runs)\n", ms(runcP50), ms(runcP99), cfg.Peers)
	}
	podmanP50, err := podmanRun(ctx, tarPath, cfg.Peers)
	if err != nil {
		fmt.Fprintf(out, "podman run --rm (true):   unavailable (%v)\n", err)
	} else {
		fmt.Fprintf(out, "podman run --rm (true):   p50 %6.1f ms   (%d runs)\n", ms(podmanP50), cfg.Peers)
	}

	srvDir := filepath.Join(dir, "server")
	srv, _, err := startServer(ctx, cfg.Binary, srvDir, "/cloudbox-bench",
		"--bridge", fmt.Sprintf("cbxbp%d", os.Getpid()%100000), "--cluster-cidr", "10.196.0.0/16")
	if err != nil {
		return err
	}
	defer srv.remove()
	if err := importImage(ctx, srv.client, tarPath); err != nil {
		return err
	}

	w, err := newPodWatcher(ctx, srv.client)
	if err != nil {
		return err
	}
	var starts []time.Duration
	for i := 0; i < cfg.Pods; i++ {
		d, err := w.timeTo(ctx, srv.client, benchRunPod(fmt.Sprintf("seq-%d", i), "sleep", "3600"), api.PodRunning)
		if err != nil {
			return err
		}
		starts = append(starts, d)
	}
	p50, p99 := percentile(starts, 50), percentile(starts, 99)
	fmt.Fprintf(out, "cloudbox create -> Running: p50 %6.1f ms, p99 %6.1f ms (%d pods; targets p50 <= 2 x runc, p99 <= 300 ms)\n", ms(p50), ms(p99), cfg.Pods)
	if runcP50 > 0 {
		fmt.Fprintf(out, "  ratio to bare runc run: p50 %.2f, p99 %.2f", float64(p50)/float64(runcP50), float64(p99)/float64(runcP99))
		if podmanP50 > 0 {
			fmt.Fprintf(out, "; to podman run at p50: %.2f", float64(p50)/float64(podmanP50))
		}
		fmt.Fprintln(out)
	}
	var once []time.Duration
	for i := 0; i < 10; i++ {
		p := benchRunPod(fmt.Sprintf("once-%d", i), "true")
		p.Spec.RestartPolicy = api.RestartNever
		d, err := w.timeTo(ctx, srv.client, p, api.PodSucceeded)
		if err != nil {
			return err
		}
		once = append(once, d)
	}
	onceP50 := percentile(once, 50)
	fmt.Fprintf(out, "cloudbox create -> Succeeded (one-shot true): p50 %6.1f ms", ms(onceP50))
	if runcP50 > 0 {
		// runc run of true is the same work: start the container, wait for it to exit.
		fmt.Fprintf(out, "; ratio to bare runc run %.2f", float64(onceP50)/float64(runcP50))
	}
	fmt.Fprintln(out)

	if err := deletePods(ctx, srv.client); err != nil {
		return err
	}
	start := time.Now()
	if err := w.burst(ctx, srv.client, cfg.Burst); err != nil {
		return err
	}
	burst := time.Since(start)
	fmt.Fprintf(out, "cloudbox %d pods at once -> all Running: %.2f s\n", cfg.Burst, burst.Seconds())
	if runcP50 > 0 {
		// The peer is runc's p50 spread over every core: the burst's floor were each
		// core busy with runc runs alone.
		cores := runtime.NumCPU()
		peer := time.Duration(cfg.Burst) * runcP50 / time.Duration(cores)
		fmt.Fprintf(out, "  peer: %d x bare runc p50 / %d cores = %.2f s; ratio %.2f (target <= 2)\n",
			cfg.Burst, cores, peer.Seconds(), float64(burst)/float64(peer))
	}
	return deletePods(ctx, srv.client)
}

func benchRunPod(name string, command ...string) *api.Pod {
	p := client.NewObject[*api.Pod]()
	p.Name, p.Namespace = name, "default"
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox:1.36", ImagePullPolicy: "IfNotPresent", Command: command}}
	zero := int64(0)
	p.Spec.TerminationGracePeriodSeconds = &zero
	return p
}

// podWatcher follows every pod's phase, so a phase change is timed from one watch
// instead of a watch per pod.
type podWatcher struct {
	mu      sync.Mutex
	waiters map[string]chan struct{}
	want    map[string]string
}

func newPodWatcher(ctx context.Context, cl *client.Client) (*podWatcher, error) {
	k := api.KindOfType[*api.Pod]()
	events, err := cl.Watch(ctx, k, "default", client.ListOptions{})
	if err != nil {
		return nil, err
	}
	w := &podWatcher{waiters: map[string]chan struct{}{}, want: map[string]string{}}
	go func() {
		for ev := range events {
			p, ok := ev.Object.(*api.Pod)
			if !ok {
				continue
			}
			w.mu.Lock()
			if ch := w.waiters[p.Name]; ch != nil && phaseReached(p, w.want[p.Name]) {
				close(ch)
				delete(w.waiters, p.Name)
			}
			w.mu.Unlock()
		}
	}()
	return w, nil
}

func phaseReached(p *api.Pod, phase string) bool {
	if p.Status.Phase != phase {
		return false
	}
	if phase == api.PodRunning {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil
	}
	return true
}

func (w *podWatcher) expect(name, phase string) chan struct{} {
	ch := make(chan struct{})
	w.mu.Lock()
	w.waiters[name], w.want[name] = ch, phase
	w.mu.Unlock()
	return ch
}

// timeTo creates p and returns the time until it reaches phase.
func (w *podWatcher) timeTo(ctx context.Context, cl *client.Client, p *api.Pod, phase string) (time.Duration, error) {
	ch := w.expect(p.Name, phase)
	start := time.Now()
	if _, err := cl.Create(ctx, p); err != nil {
		return 0, err
	}
	select {
	case <-ch:
		return time.Since(start), nil
	case <-time.After(60 * time.Second):
		return 0, fmt.Errorf("pod %s not %s within 60s", p.Name, phase)
	}
}

// burst creates n pods with 16 clients and waits until all run.
func (w *podWatcher) burst(ctx context.Context, cl *client.Client, n int) error {
	chans := make([]chan struct{}, n)
	for i := range chans {
		chans[i] = w.expect(fmt.Sprintf("burst-%d", i), api.PodRunning)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if _, err := cl.Create(ctx, benchRunPod(fmt.Sprintf("burst-%d", i), "sleep", "3600")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	deadline := time.After(5 * time.Minute)
	for i, ch := range chans {
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("burst pod %d not Running within 5 minutes", i)
		}
	}
	return nil
}

// deletePods deletes every pod in default and waits until they are gone. The
// delete asks for a grace period of one second, so that it only marks the pods:
// the agent stops and destroys the containers and only then removes the objects,
// so that what comes next does not share the cores with the teardown. (A grace of
// zero, the pods' own, would remove the objects at once and leave the agent to
// stop the containers in the background, within the next phase.)
func deletePods(ctx context.Context, cl *client.Client) error {
	k := api.KindOfType[*api.Pod]()
	l, err := cl.ListAll(ctx, k, "default", client.ListOptions{})
	if err != nil {
		return err
	}
	one := int64(1)
	for _, o := range l.Items {
		if _, err := cl.DeleteWithGrace(ctx, k, "default", o.GetObjectMeta().Name, &one); err != nil && !client.IsNotFound(err) {
			return err
		}
	}
	if err := waitCount(ctx, cl, k, "", 2*time.Minute, func(n int) bool { return n == 0 }); err != nil {
		return fmt.Errorf("waiting for the pods to go: %w", err)
	}
	return nil
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)]
}

// runcRun times n bare `runc run`s of `true` in a busybox rootfs, the floor a
// runtime could reach on this machine, and returns each run's time.
func runcRun(ctx context.Context, dir string, n int) ([]time.Duration, error) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		return nil, errors.New("runc is not installed (Debian package runc)")
	}
	bundle := filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		return nil, err
	}
	bb, err := os.ReadFile(testimage.BusyboxPath)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		return nil, err
	}
	for _, a := range []string{"true", "sh"} {
		_ = os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
	}
	spec := exec.CommandContext(ctx, runc, "spec", "--bundle", bundle)
	if out, err := spec.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %v: %s", err, out)
	}
	// Not a terminal, and `true` as the process; rlimits within this host's limits.
	cfgPath := filepath.Join(bundle, "config.json")
	var cfg map[string]any
	b, _ := os.ReadFile(cfgPath)
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, err
	}
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/true"}
	proc["rlimits"] = []map[string]any{{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}}
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return nil, err
	}
	var ds []time.Duration
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("cloudbox-bench-%d-%d", os.Getpid(), i)
		start := time.Now()
		cmd := exec.CommandContext(ctx, runc, "run", "--bundle", bundle, id)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("runc run: %v: %s", err, strings.TrimSpace(string(out)))
		}
		ds = append(ds, time.Since(start))
	}
	return ds, nil
}

// podmanRun times `podman run --rm` of the same image, loaded from the tarball.
func podmanRun(ctx context.Context, tarPath string, n int) (time.Duration, error) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		return 0, errors.New("podman is not installed (Debian package podman)")
	}
	if out, err := exec.CommandContext(ctx, podman, "load", "-q", "-i", tarPath).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("podman load: %v: %s", err, strings.TrimSpace(string(out)))
	}
	// crun refuses this machine's hybrid cgroups; podman's default rlimits exceed its
	// hard limit.
	args := []string{"--runtime", "runc", "run", "--rm", "--net=none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"docker.io/library/busybox:1.36", "true"}
	var ds []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if out, err := exec.CommandContext(ctx, podman, args...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("podman run: %v: %s", err, strings.TrimSpace(string(out)))
		}
		ds = append(ds, time.Since(start))
	}
	return percentile(ds, 50), nil
}
