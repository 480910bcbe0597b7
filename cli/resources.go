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
// .yml and .json files, in name order) or "-" for standard input.
func readManifests(c *cli.Context, paths []string) ([]api.Object, error) {
	var objs []api.Object
	for _, p := range paths {
		if p == "-" {
			got, err := decodeFrom("standard input", c.App.Reader)
			if err != nil {
				return nil, err
			}
			objs = append(objs, got...)
			continue
		}
		files := []string{p}
		if st, err := os.Stat(p); err != nil {
			return nil, err
		} else if st.IsDir() {
			files = nil
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, err
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
				return nil, err
			}
			got, err := decodeFrom(f, fh)
			fh.Close()
			if err != nil {
				return nil, err
			}
			objs = append(objs, got...)
		}
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no objects found in %s", strings.Join(paths, ", "))
	}
	return objs, nil
}

func decodeFrom(name string, r io.Reader) ([]api.Object, error) {
	objs, err := api.DecodeManifests(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return objs, nil
}

// refName is "pod/web": the singular kind and the name, as apply and delete print.
func refName(obj api.Object) string {
	k, ok := api.LookupKind(obj.GetTypeMeta().Kind)
	kind := strings.ToLower(obj.GetTypeMeta().Kind)
	if ok {
		kind = k.Singular
	}
	return kind + "/" + obj.GetObjectMeta().Name
}
