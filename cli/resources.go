package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// target is what a command acts on: a kind and, maybe, names.
type target struct {
	kind  *api.KindInfo
	names []string
}

// parseTargets reads "KIND [NAME...]", "KIND,KIND" or "KIND/NAME [KIND/NAME...]", as
// kubectl does.
func parseTargets(args []string) ([]target, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("name a kind, e.g. 'pods', 'nodes' or 'pod/web' (kinds: %s)", kindNames())
	}
	if strings.Contains(args[0], "/") {
		var out []target
		for _, a := range args {
			kindName, name, ok := strings.Cut(a, "/")
			if !ok || name == "" {
				return nil, fmt.Errorf("%q: mix of KIND/NAME and plain arguments; write every one as KIND/NAME", a)
			}
			k, err := lookupKind(kindName)
			if err != nil {
				return nil, err
			}
			out = append(out, target{kind: k, names: []string{name}})
		}
		return out, nil
	}
	kindArgs := strings.Split(args[0], ",")
	if len(kindArgs) > 1 && len(args) > 1 {
		return nil, fmt.Errorf("%q names several kinds: names cannot follow it (use KIND/NAME)", args[0])
	}
	var out []target
	for _, ka := range kindArgs {
		k, err := lookupKind(ka)
		if err != nil {
			return nil, err
		}
		out = append(out, target{kind: k, names: args[1:]})
	}
	return out, nil
}

func lookupKind(name string) (*api.KindInfo, error) {
	k, ok := api.LookupKind(name)
	if !ok {
		return nil, fmt.Errorf("unknown kind %q (kinds: %s)", name, kindNames())
	}
	return k, nil
}

// kindNames lists the kinds with their short names, for error messages and help.
func kindNames() string {
	var parts []string
	for _, k := range api.Kinds() {
		s := k.Resource
		if len(k.ShortNames) > 0 {
			s += " (" + strings.Join(k.ShortNames, ",") + ")"
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// namespaceFlags are -n and -A, shared by the commands that read objects.
func namespaceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"},
		&cli.BoolFlag{Name: "all-namespaces", Aliases: []string{"A"}, Usage: "every namespace"},
	}
}

// namespaceFor returns the namespace a command acts in for kind k.
func namespaceFor(c *cli.Context, k *api.KindInfo) string {
	if !k.Namespaced || c.Bool("all-namespaces") {
		return ""
	}
	return c.String("namespace")
}

// readManifests decodes every manifest named by -f: files, directories (their .yaml,
// .yml and .json files, in name order) or "-" for standard input, with fv saying what
// becomes of unknown fields. It returns the decoder's warnings for the caller to print
// or not.
func readManifests(c *cli.Context, paths []string, fv api.FieldValidation) ([]api.Object, []string, error) {
	var objs []api.Object
	var warnings []string
	dec := api.Decoder{FieldValidation: fv}
	decodeFrom := func(name string, r io.Reader) error {
		got, w, err := dec.Manifests(r)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		objs, warnings = append(objs, got...), append(warnings, w...)
		return nil
	}
	for _, p := range paths {
		if p == "-" {
			if err := decodeFrom("standard input", c.App.Reader); err != nil {
				return nil, nil, err
			}
			continue
		}
		files := []string{p}
		if st, err := os.Stat(p); err != nil {
			return nil, nil, err
		} else if st.IsDir() {
			files = nil
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, nil, err
			}
			for _, e := range entries {
				switch filepath.Ext(e.Name()) {
				case ".yaml", ".yml", ".json":
					if !e.IsDir() {
						files = append(files, filepath.Join(p, e.Name()))
					}
				}
			}
		}
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				return nil, nil, err
			}
			err = decodeFrom(f, fh)
			fh.Close()
			if err != nil {
				return nil, nil, err
			}
		}
	}
	if len(objs) == 0 {
		return nil, nil, fmt.Errorf("no objects found in %s", strings.Join(paths, ", "))
	}
	return objs, warnings, nil
}

// refName is "pod/web" or "deployment.apps/web": the singular kind, its group when
// it has one, and the name, as kubectl prints what apply, create, replace and scale did.
func refName(obj api.Object) string {
	k, ok := api.LookupKind(obj.GetTypeMeta().Kind)
	if !ok {
		return strings.ToLower(obj.GetTypeMeta().Kind) + "/" + obj.GetObjectMeta().Name
	}
	return kindRef(k, obj.GetObjectMeta().Name)
}

// kindRef is refName for a kind and a name.
func kindRef(k *api.KindInfo, name string) string {
	if k.Group == "" {
		return k.Singular + "/" + name
	}
	return k.Singular + "." + k.Group + "/" + name
}
