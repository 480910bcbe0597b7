package cli

import (
	"fmt"

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
   cloudbox delete pods -l app=web       # every pod the selector matches`,
		Flags: append(namespaceFlags(),
			&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}, Usage: "delete the objects in these manifests"},
			&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "delete every object the label selector matches"},
			&cli.BoolFlag{Name: "ignore-not-found", Usage: "do not fail when an object does not exist"},
		),
		Action: runDelete,
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
		objs, err := readManifests(c, files)
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
	failed := 0
	for _, d := range todo {
		_, err := cl.Delete(c.Context, d.kind, d.namespace, d.name)
		if client.IsNotFound(err) && c.Bool("ignore-not-found") {
			continue
		}
		if err != nil {
			failed++
			fmt.Fprintf(c.App.ErrWriter, "error: %v\n", err)
			continue
		}
		fmt.Fprintf(c.App.Writer, "%s %q deleted\n", d.kind.Singular, d.name)
	}
	if failed > 0 {
		return cli.Exit(fmt.Sprintf("%d of %d deletions failed", failed, len(todo)), 1)
	}
	return nil
}
