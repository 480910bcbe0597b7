package cli

import (
	"context"
	"encoding/json"
	"fmt"
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

func scaleCommand() *cli.Command {
	return &cli.Command{
		Name:      "scale",
		Usage:     "set the number of replicas of a deployment, replica set or stateful set",
		ArgsUsage: "KIND/NAME --replicas N",
		Description: `   cloudbox scale deploy/web --replicas 5
   cloudbox scale rs web-6d4f9 --replicas 0`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"},
			&cli.IntFlag{Name: "replicas", Value: -1, Usage: "the number of replicas (required)"},
		},
		Action: func(c *cli.Context) error {
			k, name, err := oneTarget(c, "deployments", "replicasets", "statefulsets")
			if err != nil {
				return err
			}
			n := c.Int("replicas")
			if n < 0 {
				return fmt.Errorf("--replicas N is required and must not be negative")
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"replicas": n}})
			if _, err := cl.Patch(c.Context, k, c.String("namespace"), name, "", patch); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s/%s scaled\n", k.Singular, name)
			return nil
		},
	}
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
	return &cli.Command{
		Name:  "rollout",
		Usage: "follow, inspect, undo, pause or resume a deployment's rollout",
		Description: `   cloudbox rollout status deploy/web          # waits until the rollout is done
   cloudbox rollout history deploy/web
   cloudbox rollout undo deploy/web [--to-revision 2]
   cloudbox rollout pause deploy/web ; cloudbox rollout resume deploy/web`,
		Subcommands: []*cli.Command{
			{Name: "status", Usage: "wait for the rollout to finish, printing its progress", ArgsUsage: "deploy/NAME",
				Flags: []cli.Flag{nsFlag, &cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "give up after this long"}}, Action: rolloutStatus},
			{Name: "history", Usage: "list the deployment's revisions", ArgsUsage: "deploy/NAME", Flags: []cli.Flag{nsFlag}, Action: rolloutHistory},
			{Name: "undo", Usage: "roll back to the previous (or a given) revision", ArgsUsage: "deploy/NAME",
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

func rolloutStatus(c *cli.Context) error {
	k, name, err := oneTarget(c, "deployments")
	if err != nil {
		return err
	}
	cl, err := newClient(c)
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
		d, ok := ev.Object.(*api.Deployment)
		if !ok || ev.Type == "BOOKMARK" {
			continue
		}
		if ev.Type == "DELETED" {
			return fmt.Errorf("deployment %q was deleted", name)
		}
		msg, done, err := rolloutProgress(d)
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
		return fmt.Errorf("timed out waiting for the rollout of deployment %q", name)
	}
	return nil
}

// ownedReplicaSets lists the replica sets a deployment controls, oldest revision first.
func ownedReplicaSets(ctx context.Context, cl *client.Client, d *api.Deployment) ([]*api.ReplicaSet, error) {
	rsKind, _ := api.LookupKind("replicasets")
	l, err := cl.ListAll(ctx, rsKind, d.Namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []*api.ReplicaSet
	for _, o := range l.Items {
		if rs := o.(*api.ReplicaSet); rs.IsControlledBy(d.UID) {
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

func getDeployment(c *cli.Context, cl *client.Client, name string) (*api.Deployment, error) {
	k, _ := api.LookupKind("deployments")
	o, err := cl.Get(c.Context, k, c.String("namespace"), name)
	if err != nil {
		return nil, err
	}
	return o.(*api.Deployment), nil
}

func rolloutHistory(c *cli.Context) error {
	_, name, err := oneTarget(c, "deployments")
	if err != nil {
		return err
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	d, err := getDeployment(c, cl, name)
	if err != nil {
		return err
	}
	rss, err := ownedReplicaSets(c.Context, cl, d)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "deployment/%s\nREVISION  CHANGE-CAUSE\n", name)
	for _, rs := range rss {
		cause := rs.Annotations[api.AnnotationChangeCause]
		if cause == "" {
			cause = "<none>"
		}
		fmt.Fprintf(c.App.Writer, "%-9d %s\n", revisionOf(rs), cause)
	}
	return nil
}

func rolloutUndo(c *cli.Context) error {
	k, name, err := oneTarget(c, "deployments")
	if err != nil {
		return err
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	var target *api.ReplicaSet
	_, err = cl.Modify(c.Context, k, c.String("namespace"), name, func(o api.Object) error {
		d := o.(*api.Deployment)
		rss, err := ownedReplicaSets(c.Context, cl, d)
		if err != nil {
			return err
		}
		target = nil
		want := c.Int64("to-revision")
		current := revisionOf(d)
		for i := len(rss) - 1; i >= 0; i-- {
			r := revisionOf(rss[i])
			if (want == 0 && r != current) || (want != 0 && r == want) {
				target = rss[i]
				break
			}
		}
		if target == nil {
			if want != 0 {
				return fmt.Errorf("deployment %q has no revision %d (see 'cloudbox rollout history')", name, want)
			}
			return fmt.Errorf("deployment %q has no previous revision to go back to", name)
		}
		tmpl := api.DeepCopy(&api.ReplicaSet{Spec: api.ReplicaSetSpec{Template: target.Spec.Template}}).(*api.ReplicaSet).Spec.Template
		delete(tmpl.Metadata.Labels, api.LabelPodTemplateHash)
		d.Spec.Template = tmpl
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s/%s rolled back to revision %d\n", k.Singular, name, revisionOf(target))
	return nil
}
