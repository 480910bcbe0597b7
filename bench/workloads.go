package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/testimage"
)

// WorkloadsConfig configures the Deployment scale-up benchmark.
type WorkloadsConfig struct {
	// Binary is the cloudbox executable to start as the server.
	Binary string
	// Replicas is how many replicas the Deployment is scaled to from zero, and how
	// many bare `runc run`s the peer times. If zero, 100.
	Replicas int
	// Out receives the report.
	Out io.Writer
}

// benchDeployment is the name of the Deployment the workloads benchmark scales.
const benchDeployment = "bench-web"

// Workloads measures, in one run: a Deployment of busybox `sleep 3600` pods scaled
// from 0 to cfg.Replicas until its status says every replica is Ready, and the same
// number of bare `runc run`s of `true` one after another, the floor a runtime could
// reach on this machine (target: the Deployment within 2 x the runc total).
func Workloads(ctx context.Context, cfg WorkloadsConfig) error {
	if cfg.Replicas == 0 {
		cfg.Replicas = 100
	}
	out := cfg.Out
	dir, err := os.MkdirTemp("", "cloudbox-bench-workloads-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tarPath := filepath.Join(dir, "busybox.tar")
	if err := testimage.WriteBusyboxTarball(tarPath, "docker.io/library/busybox:1.36"); err != nil {
		return err
	}
	fmt.Fprintln(out, "workloads benchmark: Deployment scale 0 -> N beside N bare runc runs")

	// The peer runs first, before the server exists, so neither competes with the
	// other for the two cores. runcRun's bundle set-up (one `runc spec`) is timed
	// alone in its own directory and taken out of the total.
	setupStart := time.Now()
	if _, err := runcRun(ctx, filepath.Join(dir, "runc-setup"), 0); err != nil {
		return fmt.Errorf("bare runc run (the peer): %w", err)
	}
	setup := time.Since(setupStart)
	runcStart := time.Now()
	runcRuns, err := runcRun(ctx, filepath.Join(dir, "runc"), cfg.Replicas)
	if err != nil {
		return fmt.Errorf("bare runc run (the peer): %w", err)
	}
	runcP50 := percentile(runcRuns, 50)
	runcTotal := max(time.Since(runcStart)-setup, time.Millisecond)
	fmt.Fprintf(out, "bare runc run (true) x %d, sequential: %7.2f s total, p50 %.1f ms\n",
		cfg.Replicas, runcTotal.Seconds(), ms(runcP50))

	srvDir := filepath.Join(dir, "server")
	srv, _, err := startServer(ctx, cfg.Binary, srvDir, "/cloudbox-bench-workloads",
		"--bridge", fmt.Sprintf("cbxbw%d", os.Getpid()%100000), "--cluster-cidr", "10.195.0.0/16")
	if err != nil {
		return err
	}
	defer srv.remove()
	if err := importImage(ctx, srv.client, tarPath); err != nil {
		return err
	}

	cl := srv.client
	deployKind := api.KindOfType[*api.Deployment]()
	if _, err := cl.Create(ctx, workloadDeployment(benchDeployment, 0)); err != nil {
		return fmt.Errorf("creating the deployment: %w", err)
	}
	before, err := rssOf(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	took, err := scaleAndWait(ctx, cl, deployKind, benchDeployment, cfg.Replicas)
	if err != nil {
		return err
	}
	ratio := took.Seconds() / runcTotal.Seconds()
	fmt.Fprintf(out, "cloudbox Deployment 0 -> %d replicas, until readyReplicas == %d: %7.2f s\n", cfg.Replicas, cfg.Replicas, took.Seconds())
	fmt.Fprintf(out, "  ratio to %d bare runc runs: %.2f (target <= 2)\n", cfg.Replicas, ratio)
	// The server's own footprint with the pods running (their containers are not in
	// it), beside the same server with none, read before the scale-up.
	during, err := rssOf(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "server RSS with %d running pods: %.1f MB (%s; target <= 60 MB at 110 pods)\n",
		cfg.Replicas, float64(during.total)/(1<<20), during.split())
	fmt.Fprintf(out, "  peer: the same server with 0 pods, before the scale-up: %.1f MB (%s); %.0f KB more per pod (target <= 1 MB)\n",
		float64(before.total)/(1<<20), before.split(), float64(during.total-before.total)/1024/float64(cfg.Replicas))

	// Deleting the Deployment cascades (in the background) to its ReplicaSet and
	// pods; the server is stopped only once the agent has removed them all.
	if _, err := cl.Delete(ctx, deployKind, "default", benchDeployment); err != nil {
		return fmt.Errorf("deleting the deployment: %w", err)
	}
	podKind := api.KindOfType[*api.Pod]()
	if err := waitCount(ctx, cl, podKind, "app="+benchDeployment, 2*time.Minute, func(n int) bool { return n == 0 }); err != nil {
		return fmt.Errorf("waiting for the deployment's pods to go: %w", err)
	}
	return nil
}

// importImage imports the image tarball at path into the bench node's store.
func importImage(ctx context.Context, cl *client.Client, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rc, err := cl.Stream(ctx, "POST", "/api/v1/nodes/bench-node/images", map[string][]string{"action": {"import"}}, f)
	if err != nil {
		return fmt.Errorf("importing the image: %w", err)
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// workloadDeployment is a Deployment of busybox `sleep 3600` pods that stop at once
// when deleted.
func workloadDeployment(name string, replicas int32) *api.Deployment {
	d := client.NewObject[*api.Deployment]()
	d.Name, d.Namespace = name, "default"
	d.Spec.Replicas = &replicas
	labels := map[string]string{"app": name}
	d.Spec.Selector = &api.LabelSelector{MatchLabels: labels}
	d.Spec.Template.Metadata.Labels = labels
	zero := int64(0)
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = &zero
	d.Spec.Template.Spec.Containers = []api.Container{{Name: "c", Image: "busybox:1.36", ImagePullPolicy: "IfNotPresent",
		Command: []string{"sleep", "3600"}}}
	return d
}

// scaleAndWait sets the Deployment's spec.replicas with a merge patch and returns the
// time from the patch until its status reports that many ready replicas for the
// patched generation. The watch starts before the patch, so no update is missed.
func scaleAndWait(ctx context.Context, cl *client.Client, k *api.KindInfo, name string, replicas int) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cur, err := cl.Get(ctx, k, "default", name)
	if err != nil {
		return 0, err
	}
	events, err := cl.Watch(ctx, k, "default", client.ListOptions{ResourceVersion: cur.GetObjectMeta().ResourceVersion})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	patched, err := cl.Patch(ctx, k, "default", name, "", []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)))
	if err != nil {
		return 0, fmt.Errorf("scaling %s: %w", name, err)
	}
	gen := patched.GetObjectMeta().Generation
	timeout := time.After(10 * time.Minute)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return 0, errors.New("deployment watch ended")
			}
			if ev.Err != nil {
				return 0, ev.Err
			}
			d, ok := ev.Object.(*api.Deployment)
			if !ok || d.Name != name {
				continue
			}
			if d.Status.ObservedGeneration >= gen && int(d.Status.ReadyReplicas) == replicas {
				return time.Since(start), nil
			}
		case <-timeout:
			return 0, fmt.Errorf("deployment %s not at %d ready replicas within 10 minutes", name, replicas)
		}
	}
}

// waitCount waits until done accepts the number of objects of kind k in default that
// match selector, following a watch from a list rather than polling.
func waitCount(ctx context.Context, cl *client.Client, k *api.KindInfo, selector string, timeout time.Duration, done func(int) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	l, err := cl.ListAll(ctx, k, "default", client.ListOptions{LabelSelector: selector})
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, o := range l.Items {
		names[o.GetObjectMeta().Name] = true
	}
	if done(len(names)) {
		return nil
	}
	events, err := cl.Watch(ctx, k, "default", client.ListOptions{LabelSelector: selector, ResourceVersion: l.ResourceVersion})
	if err != nil {
		return err
	}
	for ev := range events {
		if ev.Err != nil {
			return ev.Err
		}
		switch ev.Type {
		case "ADDED", "MODIFIED":
			names[ev.Object.GetObjectMeta().Name] = true
		case "DELETED":
			delete(names, ev.Object.GetObjectMeta().Name)
		}
		if done(len(names)) {
			return nil
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%d %s left after %s", len(names), k.Resource, timeout)
	}
	return errors.New("watch ended")
}
