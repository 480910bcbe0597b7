package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	registerCommand(scaleCommand())
	registerCommand(setCommand())
	registerCommand(rolloutCommand())
}

// oneTarget reads exactly one KIND/NAME (or KIND NAME) of one of the allowed kinds.
func oneTarget(c *cli.Context, allowed ...string) (*api.KindInfo, string, error) {
	targets, err := parseTargets(c.Args().Slice())
	if err != nil {
		return nil, "", err
	}
	if len(targets) != 1 || len(targets[0].names) != 1 {
		return nil, "", fmt.Errorf("name one object, e.g. deploy/web")
	}
	k := targets[0].kind
	for _, a := range allowed {
		if k.Resource == a {
			return k, targets[0].names[0], nil
		}
	}
	return nil, "", fmt.Errorf("%s cannot do this (it works on %s)", k.Resource, strings.Join(allowed, ", "))
}

// scalableKinds are the resources scale works on.
var scalableKinds = []string{"deployments", "replicasets", "statefulsets"}

func scaleCommand() *cli.Command {
	return &cli.Command{
		Name:      "scale",
		Usage:     "set the number of replicas of a deployment, replica set or stateful set",
		ArgsUsage: "KIND/NAME --replicas N | -f FILE --replicas N",
		Description: `   cloudbox scale deploy/web --replicas 5
   cloudbox scale rs web-6d4f9 --replicas 0
   cloudbox scale -f replicaset.yaml --replicas 6    # the objects the manifests name`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"},
			&cli.IntFlag{Name: "replicas", Value: -1, Usage: "the number of replicas (required)"},
			&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}, Usage: "scale the objects of these manifests (file, directory or -)"},
			validateFlag(),
		},
		Action: func(c *cli.Context) error {
			n := c.Int("replicas")
			if n < 0 {
				return fmt.Errorf("--replicas N is required and must not be negative")
			}
			if len(c.StringSlice("filename")) > 0 {
				if c.NArg() > 0 {
					return fmt.Errorf("name the objects either as KIND/NAME or with -f, not both")
				}
				return eachManifestObject(c, func(ctx context.Context, cl *client.Client, k *api.KindInfo, obj api.Object) (string, error) {
					if !slices.Contains(scalableKinds, k.Resource) {
						return "", fmt.Errorf("%s cannot be scaled (scale works on %s)", k.Resource, strings.Join(scalableKinds, ", "))
					}
					return "scaled", scaleTo(ctx, cl, k, obj.GetObjectMeta().Namespace, obj.GetObjectMeta().Name, n)
				})
			}
			k, name, err := oneTarget(c, scalableKinds...)
			if err != nil {
				return err
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			if err := scaleTo(c.Context, cl, k, c.String("namespace"), name, n); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s scaled\n", kindRef(k, name))
			return nil
		},
	}
}

// scaleTo sets spec.replicas of the object.
func scaleTo(ctx context.Context, cl *client.Client, k *api.KindInfo, namespace, name string, n int) error {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"replicas": n}})
	_, err := cl.Patch(ctx, k, namespace, name, "", patch)
	return err
}

func setCommand() *cli.Command {
	return &cli.Command{
		Name:  "set",
		Usage: "change a field of a workload",
		Subcommands: []*cli.Command{{
			Name:      "image",
			Usage:     "change the image of containers in a workload's pod template (a rollout follows)",
			ArgsUsage: "KIND/NAME CONTAINER=IMAGE...",
			Description: `   cloudbox set image deploy/web httpd=busybox:1.37
   cloudbox set image deploy/web '*=busybox:1.37'      # every container`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"},
			},
			Action: runSetImage,
		}},
	}
}

// templateOf returns the pod template of a workload object, or nil.
func templateOf(o api.Object) *api.PodTemplateSpec {
	switch w := o.(type) {
	case *api.Deployment:
		return &w.Spec.Template
	case *api.ReplicaSet:
		return &w.Spec.Template
	case *api.DaemonSet:
		return &w.Spec.Template
	case *api.StatefulSet:
		return &w.Spec.Template
	}
	return nil
}

func runSetImage(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) < 2 {
		return fmt.Errorf("usage: cloudbox set image KIND/NAME CONTAINER=IMAGE...")
	}
	images := map[string]string{}
	for _, a := range args[1:] {
		ctr, img, ok := strings.Cut(a, "=")
		if !ok || ctr == "" || img == "" {
			return fmt.Errorf("%q: want CONTAINER=IMAGE", a)
		}
		images[ctr] = img
	}
	targets, err := parseTargets(args[:1])
	if err != nil {
		return err
	}
	if len(targets[0].names) != 1 {
		return fmt.Errorf("name one object as KIND/NAME")
	}
	k, name := targets[0].kind, targets[0].names[0]
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	_, err = cl.Modify(c.Context, k, c.String("namespace"), name, func(o api.Object) error {
		t := templateOf(o)
		if t == nil {
			return fmt.Errorf("%s have no pod template to set images in", k.Resource)
		}
		found := map[string]bool{}
		for _, list := range [][]api.Container{t.Spec.InitContainers, t.Spec.Containers} {
			for i := range list {
				if img, ok := images[list[i].Name]; ok {
					list[i].Image, found[list[i].Name] = img, true
				} else if img, ok := images["*"]; ok {
					list[i].Image, found["*"] = img, true
				}
			}
		}
		for ctr := range images {
			if !found[ctr] {
				return fmt.Errorf("%s/%s has no container %q", k.Singular, name, ctr)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s/%s image updated\n", k.Singular, name)
	return nil
}

func rolloutCommand() *cli.Command {
	nsFlag := &cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"}
	const workload = "deploy/NAME | ds/NAME | sts/NAME"
	return &cli.Command{
		Name:  "rollout",
		Usage: "follow, inspect or undo the rollout of a deployment, daemon set or stateful set; pause or resume a deployment's",
		Description: `   cloudbox rollout status deploy/web          # waits until the rollout is done
   cloudbox rollout history deploy/web
   cloudbox rollout history ds/agent --revision 2
   cloudbox rollout undo deploy/web [--to-revision 2]
   cloudbox rollout undo sts/db
   cloudbox rollout pause deploy/web ; cloudbox rollout resume deploy/web`,
		Subcommands: []*cli.Command{
			{Name: "status", Usage: "wait for the rollout to finish, printing its progress", ArgsUsage: workload,
				Flags: []cli.Flag{nsFlag, &cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "give up after this long"}}, Action: rolloutStatus},
			{Name: "history", Usage: "list the revisions of the pod template, or show one", ArgsUsage: workload,
				Flags: []cli.Flag{nsFlag, &cli.Int64Flag{Name: "revision", Usage: "show this revision's pod template"}}, Action: rolloutHistory},
			{Name: "undo", Usage: "roll back to the previous (or a given) revision", ArgsUsage: workload,
				Flags: []cli.Flag{nsFlag, &cli.Int64Flag{Name: "to-revision", Usage: "the revision to go back to (default: the previous one)"}}, Action: rolloutUndo},
			{Name: "pause", Usage: "stop the rollout where it is (scaling still applies)", ArgsUsage: "deploy/NAME", Flags: []cli.Flag{nsFlag},
				Action: func(c *cli.Context) error { return setPaused(c, true) }},
			{Name: "resume", Usage: "let a paused rollout go on", ArgsUsage: "deploy/NAME", Flags: []cli.Flag{nsFlag},
				Action: func(c *cli.Context) error { return setPaused(c, false) }},
		},
	}
}

func setPaused(c *cli.Context, paused bool) error {
	k, name, err := oneTarget(c, "deployments")
	if err != nil {
		return err
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"paused": paused}})
	if _, err := cl.Patch(c.Context, k, c.String("namespace"), name, "", patch); err != nil {
		return err
	}
	word := "resumed"
	if paused {
		word = "paused"
	}
	fmt.Fprintf(c.App.Writer, "deployment/%s %s\n", name, word)
	return nil
}

// rolloutProgress says where a deployment's rollout is, as kubectl words it; done is
// true when it has finished.
func rolloutProgress(d *api.Deployment) (msg string, done bool, err error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...", false, nil
	}
	if c := d.Status.Condition("Progressing"); c != nil && c.Reason == "ProgressDeadlineExceeded" {
		return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
	}
	want := api.Int32Value(d.Spec.Replicas, 1)
	s := d.Status
	switch {
	case s.UpdatedReplicas < want:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, s.UpdatedReplicas, want), false, nil
	case s.Replicas > s.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, s.Replicas-s.UpdatedReplicas), false, nil
	case s.AvailableReplicas < s.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, s.AvailableReplicas, s.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out", d.Name), true, nil
}

// daemonSetProgress says where a daemon set's rollout is, as kubectl words it.
func daemonSetProgress(d *api.DaemonSet) (msg string, done bool, err error) {
	if d.Spec.UpdateStrategy.Type != api.RollingUpdateDaemonSetStrategyType {
		return "", false, fmt.Errorf("rollout status is only available for the %s strategy type", api.RollingUpdateDaemonSetStrategyType)
	}
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for daemon set spec update to be observed...", false, nil
	}
	s := d.Status
	switch {
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...", d.Name, s.UpdatedNumberScheduled, s.DesiredNumberScheduled), false, nil
	case s.NumberAvailable < s.DesiredNumberScheduled:
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...", d.Name, s.NumberAvailable, s.DesiredNumberScheduled), false, nil
	}
	return fmt.Sprintf("daemon set %q successfully rolled out", d.Name), true, nil
}

// statefulSetProgress says where a stateful set's rollout is, as kubectl words it:
// pods below the partition keep the old revision, so a partitioned rollout is done
// once those above it are updated.
func statefulSetProgress(s *api.StatefulSet) (msg string, done bool, err error) {
	if s.Spec.UpdateStrategy.Type != api.RollingUpdateStatefulSetStrategyType {
		return "", false, fmt.Errorf("rollout status is only available for the %s strategy type", api.RollingUpdateStatefulSetStrategyType)
	}
	if s.Status.ObservedGeneration == 0 || s.Generation > s.Status.ObservedGeneration {
		return "Waiting for statefulset spec update to be observed...", false, nil
	}
	want := api.Int32Value(s.Spec.Replicas, 1)
	if s.Status.ReadyReplicas < want {
		return fmt.Sprintf("Waiting for %d pods to be ready...", want-s.Status.ReadyReplicas), false, nil
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
		if s.Status.UpdatedReplicas < want-*ru.Partition {
			return fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...", s.Status.UpdatedReplicas, want-*ru.Partition), false, nil
		}
		return fmt.Sprintf("partitioned roll out complete: %d new pods have been updated...", s.Status.UpdatedReplicas), true, nil
	}
	if s.Status.UpdateRevision != s.Status.CurrentRevision {
		return fmt.Sprintf("waiting for statefulset rolling update to complete %d pods at revision %s...", s.Status.UpdatedReplicas, s.Status.UpdateRevision), false, nil
	}
	return fmt.Sprintf("statefulset rolling update complete %d pods at revision %s...", s.Status.CurrentReplicas, s.Status.CurrentRevision), true, nil
}

// workloadProgress is rolloutProgress for any of rolloutKinds.
func workloadProgress(o api.Object) (msg string, done bool, err error) {
	switch w := o.(type) {
	case *api.Deployment:
		return rolloutProgress(w)
	case *api.DaemonSet:
		return daemonSetProgress(w)
	case *api.StatefulSet:
		return statefulSetProgress(w)
	}
	return "", false, fmt.Errorf("%T has no rollout", o)
}

func rolloutStatus(c *cli.Context) error {
	k, name, cl, err := rolloutTarget(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	ns := c.String("namespace")
	events, err := cl.Watch(ctx, k, ns, client.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		return err
	}
	last := ""
	for ev := range events {
		if ev.Err != nil {
			return ev.Err
		}
		if ev.Object == nil || ev.Type == "BOOKMARK" {
			continue
		}
		if ev.Type == "DELETED" {
			return fmt.Errorf("%s %q was deleted", k.Singular, name)
		}
		msg, done, err := workloadProgress(ev.Object)
		if err != nil {
			return err
		}
		if msg != last {
			fmt.Fprintln(c.App.Writer, msg)
			last = msg
		}
		if done {
			return nil
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("timed out waiting for the rollout of %s %q", k.Singular, name)
	}
	return nil
}

// ownedReplicaSets lists the replica sets a deployment controls, oldest revision first.
func ownedReplicaSets(ctx context.Context, cl *client.Client, d *api.Deployment) ([]*api.ReplicaSet, error) {
	rss, err := client.ListTyped[*api.ReplicaSet](ctx, cl, d.Namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []*api.ReplicaSet
	for _, rs := range rss {
		if rs.IsControlledBy(d.UID) {
			out = append(out, rs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return revisionOf(out[i]) < revisionOf(out[j]) })
	return out, nil
}

func revisionOf(o api.Object) int64 {
	n, _ := strconv.ParseInt(o.GetObjectMeta().Annotations[api.AnnotationRevision], 10, 64)
	return n
}
