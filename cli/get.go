package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "list objects, or show some by name",
		ArgsUsage: "KIND [NAME...] | KIND/NAME...",
		Description: `Shows objects as a table, or as json, yaml or names with -o.

   cloudbox get pods                     # in the default namespace
   cloudbox get po -A -o wide            # every namespace, with IP and node
   cloudbox get pod web -o yaml
   cloudbox get nodes -l topology.kubernetes.io/zone=edge-1
   cloudbox get pods -w                  # keep watching`,
		Flags: append(namespaceFlags(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json, yaml, wide or name"},
			&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label selector, e.g. app=web,tier!=db"},
			&cli.StringFlag{Name: "field-selector", Usage: "field selector, e.g. spec.nodeName=node1"},
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "after listing, watch for changes"},
		),
		Action:       runGet,
		BashComplete: completeKinds,
	}
}

func runGet(c *cli.Context) error {
	out := c.String("output")
	switch out {
	case "", "json", "yaml", "wide", "name":
	default:
		return fmt.Errorf("--output %q: use json, yaml, wide or name", out)
	}
	targets, err := parseTargets(c.Args().Slice())
	if err != nil {
		return err
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	for _, t := range targets {
		ns := namespaceFor(c, t.kind)
		var objs []api.Object
		rv := ""
		if len(t.names) == 0 {
			l, err := cl.ListAll(c.Context, t.kind, ns, client.ListOptions{
				LabelSelector: c.String("selector"), FieldSelector: c.String("field-selector"), Limit: 500})
			if err != nil {
				return err
			}
			objs, rv = l.Items, l.ResourceVersion
			sortObjects(objs)
		} else {
			for _, name := range t.names {
				o, err := cl.Get(c.Context, t.kind, ns, name)
				if err != nil {
					return err
				}
				objs = append(objs, o)
			}
		}
		withNS := t.kind.Namespaced && c.Bool("all-namespaces")
		if err := printObjects(c.App.Writer, t.kind, objs, out, withNS, len(t.names) == 1); err != nil {
			return err
		}
		if len(objs) == 0 && out == "" && !c.Bool("watch") {
			printNoResources(c.Context, c.App.ErrWriter, cl, t.kind, ns, c.String("selector") != "" || c.String("field-selector") != "")
		}
		if c.Bool("watch") {
			return watchAndPrint(c, cl, t.kind, ns, rv, out, withNS, len(objs) > 0)
		}
	}
	return nil
}

// printObjects writes objects in the chosen format. single prints one object bare
// (not wrapped in a List) for json and yaml.
func printObjects(w io.Writer, k *api.KindInfo, objs []api.Object, out string, withNS, single bool) error {
	switch out {
	case "json", "yaml":
		var v any = objs
		if single && len(objs) == 1 {
			v = objs[0]
		} else {
			v = map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
		}
		return encode(w, v, out)
	case "name":
		for _, o := range objs {
			fmt.Fprintln(w, k.Singular+"/"+o.GetObjectMeta().Name)
		}
		return nil
	}
	if len(objs) == 0 {
		return nil
	}
	tp := newTablePrinter(w, k, out == "wide", withNS)
	for _, o := range objs {
		tp.print(o)
	}
	tp.flush()
	return nil
}

func encode(w io.Writer, v any, format string) error {
	if format == "yaml" {
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

// watchAndPrint prints each change after revision rv until interrupted.
func watchAndPrint(c *cli.Context, cl *client.Client, k *api.KindInfo, ns, rv, out string, withNS, headerDone bool) error {
	events, err := cl.Watch(c.Context, k, ns, client.ListOptions{
		LabelSelector: c.String("selector"), FieldSelector: c.String("field-selector"), ResourceVersion: rv})
	if err != nil {
		return err
	}
	tp := newTablePrinter(c.App.Writer, k, out == "wide", withNS)
	tp.headerPrinted = headerDone
	for ev := range events {
		if ev.Err != nil {
			return ev.Err
		}
		if ev.Type == "BOOKMARK" {
			continue
		}
		switch out {
		case "json", "yaml":
			if err := encode(c.App.Writer, map[string]any{"type": ev.Type, "object": ev.Object}, out); err != nil {
				return err
			}
			if out == "yaml" {
				fmt.Fprintln(c.App.Writer, "---")
			}
		case "name":
			fmt.Fprintln(c.App.Writer, k.Singular+"/"+ev.Object.GetObjectMeta().Name)
		default:
			tp.print(ev.Object)
			tp.flush()
		}
	}
	return nil
}
