package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func deleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete objects by name or by manifest",
		ArgsUsage: "KIND NAME... | KIND/NAME... | -f FILE",
		Description: `   cloudbox delete pod web
   cloudbox delete pod/web pod/db
   cloudbox delete -f web.yaml
   cloudbox delete pods -l app=web       # every pod the selector matches
   cloudbox delete deploy/web --cascade=orphan   # keep its ReplicaSets and pods`,
		Flags: append(namespaceFlags(),
			&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}, Usage: "delete the objects in these manifests"},
			&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "delete every object the label selector matches"},
			&cli.BoolFlag{Name: "ignore-not-found", Usage: "do not fail when an object does not exist"},
			&cli.Int64Flag{Name: "grace-period", Value: -1, Usage: "seconds a pod has to stop (default: its terminationGracePeriodSeconds)"},
			&cli.BoolFlag{Name: "force", Usage: "remove pods at once, without waiting for their node to stop them (same as --grace-period 0)"},
			&cli.StringFlag{Name: "cascade", Value: "background", Usage: "what becomes of the objects this one owns: background (deleted after it), orphan (kept, without the owner reference) or foreground (deleted before it: the object goes last)"},
			&cli.BoolFlag{Name: "wait", Value: true, Usage: "wait until the objects are gone"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "how long --wait waits"},
		),
		Action:       runDelete,
		BashComplete: completeKinds,
	}
}

type deletion struct {
	kind      *api.KindInfo
	namespace string
	name      string
}

func runDelete(c *cli.Context) error {
	var todo []deletion
	if files := c.StringSlice("filename"); len(files) > 0 {
		// Only the names matter: what a manifest says besides is not for delete to judge.
		objs, _, err := readManifests(c, files, api.FieldValidationIgnore)
		if err != nil {
			return err
		}
		for _, o := range objs {
			k, err := api.KindFor(o.GetTypeMeta().APIVersion, o.GetTypeMeta().Kind)
			if err != nil {
				return err
			}
			ns := o.GetObjectMeta().Namespace
			if k.Namespaced && ns == "" {
				ns = c.String("namespace")
			}
			todo = append(todo, deletion{k, ns, o.GetObjectMeta().Name})
		}
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	if c.Args().Len() > 0 {
		targets, err := parseTargets(c.Args().Slice())
		if err != nil {
			return err
		}
		for _, t := range targets {
			ns := namespaceFor(c, t.kind)
			names := t.names
			if len(names) == 0 {
				if c.String("selector") == "" {
					return fmt.Errorf("name the %s to delete, or select them with -l", t.kind.Resource)
				}
				l, err := cl.ListAll(c.Context, t.kind, ns, client.ListOptions{LabelSelector: c.String("selector")})
				if err != nil {
					return err
				}
				for _, o := range l.Items {
					todo = append(todo, deletion{t.kind, o.GetObjectMeta().Namespace, o.GetObjectMeta().Name})
				}
				continue
			}
			for _, n := range names {
				todo = append(todo, deletion{t.kind, ns, n})
			}
		}
	}
	if len(todo) == 0 && c.String("selector") == "" {
		return fmt.Errorf("nothing to delete: name objects (KIND NAME) or pass -f FILE")
	}
	var grace *int64
	if g := c.Int64("grace-period"); g >= 0 {
		grace = &g
	}
	if c.Bool("force") {
		zero := int64(0)
		grace = &zero
	}
	var policy string
	switch c.String("cascade") {
	case "background", "true", "":
		policy = api.PropagationBackground
	case "orphan", "false":
		policy = api.PropagationOrphan
	case "foreground":
		policy = api.PropagationForeground
	default:
		return fmt.Errorf("--cascade must be background, orphan or foreground, not %q", c.String("cascade"))
	}
	failed := 0
	var terminating []api.Object
	for _, d := range todo {
		last, err := cl.DeleteWithOptions(c.Context, d.kind, d.namespace, d.name, client.DeleteOptions{GracePeriodSeconds: grace, PropagationPolicy: policy})
		if client.IsNotFound(err) && c.Bool("ignore-not-found") {
			continue
		}
		if err != nil {
			failed++
			fmt.Fprintf(c.App.ErrWriter, "error: %v\n", err)
			continue
		}
		fmt.Fprintf(c.App.Writer, "%s %q deleted\n", d.kind.Singular, d.name)
		if last.GetObjectMeta().DeletionTimestamp != nil {
			terminating = append(terminating, last)
		}
	}
	if c.Bool("wait") {
		ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
		defer cancel()
		for _, o := range terminating {
			if err := waitGone(ctx, cl, o); err != nil {
				return err
			}
		}
	}
	if failed > 0 {
		return cli.Exit(fmt.Sprintf("%d of %d deletions failed", failed, len(todo)), 1)
	}
	return nil
}

// waitGone watches an object until it is deleted.
func waitGone(ctx context.Context, cl *client.Client, o api.Object) error {
	k, _ := api.KindOf(o)
	m := o.GetObjectMeta()
	events, err := cl.Watch(ctx, k, m.Namespace, client.ListOptions{FieldSelector: "metadata.name=" + m.Name})
	if err != nil {
		return err
	}
	if _, err := cl.Get(ctx, k, m.Namespace, m.Name); client.IsNotFound(err) {
		return nil
	}
	for ev := range events {
		if ev.Err != nil {
			return ev.Err
		}
		if ev.Type == "DELETED" {
			return nil
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s %q is still terminating (its node must stop it; --force removes it at once)", k.Singular, m.Name)
	}
	return nil
}
