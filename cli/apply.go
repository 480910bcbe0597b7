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

   pod/web created | deployment.apps/web configured | pod/web unchanged

Older apiVersions (extensions/v1beta1, apps/v1beta1, apps/v1beta2) are read as
apps/v1, a selector they leave out is taken from the template's labels, and a field
cloudbox does not know is dropped: each with a warning on stderr, which names the
field probably meant. --validate=strict refuses such manifests instead.

   cloudbox apply -f web.yaml
   cloudbox apply -f manifests/          # every .yaml, .yml and .json file
   cat web.yaml | cloudbox apply -f -
   cloudbox apply --validate=strict -f web.yaml`,
		Flags: manifestFlags(true),
		Action: func(c *cli.Context) error {
			return eachManifestObject(c, applyOne)
		},
	}
}

// manifestFlags are the flags of the commands that act on the objects of manifests:
// -f (required unless the command can do without), -n and --validate.
func manifestFlags(required bool) []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}, Usage: "file, directory or - (repeatable)", Required: required},
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "namespace for objects that name none"},
		validateFlag(),
	}
}

// eachManifestObject reads the manifests -f names, printing their warnings (or, with
// --validate=strict, refusing them before anything is written), and does act to each
// object in turn, in the namespace -n names when the object names none. It prints
// "KIND/NAME RESULT" for each, or the error, and fails when any object failed.
func eachManifestObject(c *cli.Context, act func(context.Context, *client.Client, *api.KindInfo, api.Object) (string, error)) error {
	fv, err := fieldValidation(c)
	if err != nil {
		return err
	}
	objs, warns, err := readManifests(c, c.StringSlice("filename"), fv)
	if err != nil {
		return err
	}
	for _, w := range warns {
		warnings(c).print(w)
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	failed := 0
	for _, obj := range objs {
		k, err := api.KindFor(obj.GetTypeMeta().APIVersion, obj.GetTypeMeta().Kind)
		result := ""
		if err == nil {
			if m := obj.GetObjectMeta(); k.Namespaced && m.Namespace == "" {
				m.Namespace = c.String("namespace")
			}
			result, err = act(c.Context, cl, k, obj)
		}
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
}

// applyOne creates obj or updates the existing object to match it, and says which:
// "created", "configured" or "unchanged". The manifest's labels, annotations and spec
// replace the stored ones; status and server-set metadata are kept.
func applyOne(ctx context.Context, cl *client.Client, k *api.KindInfo, obj api.Object) (string, error) {
	m := obj.GetObjectMeta()
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
		if c, ok := cur.(*api.Pod); ok && n.Spec.NodeName == "" {
			n.Spec.NodeName = c.Spec.NodeName
		}
	case *api.Node:
		if c, ok := cur.(*api.Node); ok && n.Spec.PodCIDR == "" {
			n.Spec.PodCIDR = c.Spec.PodCIDR
		}
	}
}
