package client

import "github.com/cloudbox/cloudbox/cloud/api"

// The indexes every informer keeps.
const (
	// IndexNamespace files objects by metadata.namespace.
	IndexNamespace = "namespace"
	// IndexOwner files objects by the UID of each of their owner references.
	IndexOwner = "owner"
	// IndexController files objects by the UID of their controller reference.
	IndexController = "controller"
	// IndexNode files objects by the node they are bound to (spec.nodeName), for the
	// kinds that have that field.
	IndexNode = "node"
)

// index maps an index value to the objects filed under it, by key.
type index struct {
	valuesOf func(api.Object) []string
	values   map[string]map[string]api.Object
}

type indexes map[string]index

func newIndexes(k *api.KindInfo) indexes {
	ix := indexes{
		IndexNamespace:  {valuesOf: namespaceOf},
		IndexOwner:      {valuesOf: ownerUIDs},
		IndexController: {valuesOf: controllerUID},
	}
	if k.Fields != nil {
		if _, ok := k.Fields(k.New())["spec.nodeName"]; ok {
			ix[IndexNode] = index{valuesOf: func(o api.Object) []string { return nonEmpty(k.Fields(o)["spec.nodeName"]) }}
		}
	}
	for name, x := range ix {
		x.values = map[string]map[string]api.Object{}
		ix[name] = x
	}
	return ix
}

func (ix indexes) add(key string, o api.Object) {
	for _, x := range ix {
		for _, v := range x.valuesOf(o) {
			set := x.values[v]
			if set == nil {
				set = map[string]api.Object{}
				x.values[v] = set
			}
			set[key] = o
		}
	}
}

func (ix indexes) remove(key string, o api.Object) {
	for _, x := range ix {
		for _, v := range x.valuesOf(o) {
			delete(x.values[v], key)
			if len(x.values[v]) == 0 {
				delete(x.values, v)
			}
		}
	}
}

func namespaceOf(o api.Object) []string { return nonEmpty(o.GetObjectMeta().Namespace) }

func ownerUIDs(o api.Object) []string {
	refs := o.GetObjectMeta().OwnerReferences
	if len(refs) == 0 {
		return nil
	}
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.UID)
	}
	return out
}

func controllerUID(o api.Object) []string {
	if ref := o.GetObjectMeta().ControllerRef(); ref != nil {
		return []string{ref.UID}
	}
	return nil
}

func nonEmpty(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}
