package cli

import (
	"context"
	"fmt"
	"reflect"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func applyCommand() *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "create or update objects from manifests",
		ArgsUsage: " ",
		Description: `Reads YAML or JSON manifests (several documents per file) and creates each
object, or updates it if it exists. Prints what happened to each:

   pod/web created | pod/web configured | pod/web unchanged

   cloudbox apply -f web.yaml
   cloudbox apply -f manifests/          # every .yaml, .yml and .json file
   cat web.yaml | cloudbox apply -f -`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}, Usage: "file, directory or - (repeatable)", Required: true},
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "namespace for objects that name none"},
		},
		Action: func(c *cli.Context) error {
			objs, err := readManifests(c, c.StringSlice("filename"))
			if err != nil {
				return err
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			failed := 0
			for _, obj := range objs {
				result, err := applyOne(c.Context, cl, obj, c.String("namespace"))
				if err != nil {
					failed++
					fmt.Fprintf(c.App.ErrWriter, "error: %s: %v\n", refName(obj), err)
					continue
				}
				fmt.Fprintf(c.App.Writer, "%s %s\n", refName(obj), result)
			}
			if failed > 0 {
				return cli.Exit(fmt.Sprintf("%d of %d objects failed", failed, len(objs)), 1)
			}
			return nil
		},
	}
}

// applyOne creates obj or updates the existing object to match it, and says which:
// "created", "configured" or "unchanged". The manifest's labels, annotations and spec
// replace the stored ones; status and server-set metadata are kept.
func applyOne(ctx context.Context, cl *client.Client, obj api.Object, defaultNS string) (string, error) {
	k, err := api.KindFor(obj.GetTypeMeta().APIVersion, obj.GetTypeMeta().Kind)
	if err != nil {
		return "", err
	}
	m := obj.GetObjectMeta()
	if k.Namespaced && m.Namespace == "" {
		m.Namespace = defaultNS
	}
	if m.Name == "" && m.GenerateName != "" {
		if _, err := cl.Create(ctx, obj); err != nil {
			return "", err
		}
		return "created", nil
	}
	api.Default(obj)
	// Status writes by the agent move the resourceVersion under us: on a conflict,
	// read again and recompute.
	for attempt := 0; ; attempt++ {
		cur, err := cl.Get(ctx, k, m.Namespace, m.Name)
		if client.IsNotFound(err) {
			if _, err := cl.Create(ctx, obj); err != nil {
				return "", err
			}
			return "created", nil
		}
		if err != nil {
			return "", err
		}
		next := api.DeepCopy(cur)
		nm, cm := next.GetObjectMeta(), cur.GetObjectMeta()
		nm.Labels, nm.Annotations = m.Labels, m.Annotations
		copySpec(obj, next)
		keepServerSetFields(cur, next)
		if reflect.DeepEqual(nm.Labels, cm.Labels) && reflect.DeepEqual(nm.Annotations, cm.Annotations) &&
			reflect.DeepEqual(specOf(next), specOf(cur)) {
			return "unchanged", nil
		}
		_, err = cl.Update(ctx, next)
		if client.IsConflict(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return "", err
		}
		return "configured", nil
	}
}

// specOf and copySpec reach the Spec field every kind has (some kinds, like
// ConfigMap, keep their payload in other top-level fields: those are copied too).
func specOf(obj api.Object) []any {
	v := reflect.ValueOf(obj).Elem()
	var out []any
	for i := 0; i < v.NumField(); i++ {
		switch v.Type().Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
		default:
			out = append(out, v.Field(i).Interface())
		}
	}
	return out
}

func copySpec(from, to api.Object) {
	src, dst := reflect.ValueOf(from).Elem(), reflect.ValueOf(to).Elem()
	for i := 0; i < src.NumField(); i++ {
		switch src.Type().Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
		default:
			dst.Field(i).Set(src.Field(i))
		}
	}
}

// keepServerSetFields keeps the spec fields the control plane fills in (a pod's node,
// a node's pod CIDR) when the manifest leaves them empty, so re-applying a manifest
// does not try to undo the scheduler's work.
func keepServerSetFields(cur, next api.Object) {
	switch n := next.(type) {
	case *api.Pod:
		if n.Spec.NodeName == "" {
			n.Spec.NodeName = cur.(*api.Pod).Spec.NodeName
		}
	case *api.Node:
		if n.Spec.PodCIDR == "" {
			n.Spec.PodCIDR = cur.(*api.Node).Spec.PodCIDR
		}
	}
}
