package client

import "github.com/cloudbox/cloudbox/cloud/api"

// Typed is an informer read with its Go type T (*api.Pod, *api.Node, ...), so that
// callers need no type assertions. Objects are shared and must not be modified.
type Typed[T api.Object] struct{ *Informer }

// TypedHandler receives a Typed informer's changes; see Handler.
type TypedHandler[T api.Object] struct {
	OnAdd    func(obj T)
	OnUpdate func(old, obj T)
	OnDelete func(obj T)
}

// For returns the factory's shared informer of T's kind, typed.
func For[T api.Object](f *Factory) Typed[T] {
	return Typed[T]{f.Informer(api.KindOfType[T]())}
}

// AsTyped reads an informer of T's kind with its type; it panics on another kind.
func AsTyped[T api.Object](inf *Informer) Typed[T] {
	if k := api.KindOfType[T](); k != inf.kind {
		panic("client: informer of " + inf.kind.Resource + " read as " + k.Resource)
	}
	return Typed[T]{inf}
}

// Get returns the cached object with key "namespace/name" (or "name").
func (t Typed[T]) Get(key string) (T, bool) {
	o := t.Informer.Get(key)
	if o == nil {
		var zero T
		return zero, false
	}
	return o.(T), true
}

// GetByName returns the cached object name in namespace ns ("" for cluster-scoped kinds).
func (t Typed[T]) GetByName(ns, name string) (T, bool) {
	if ns == "" {
		return t.Get(name)
	}
	return t.Get(ns + "/" + name)
}

// List returns every cached object. The slice is shared until the next change: do not
// modify it.
func (t Typed[T]) List() []T {
	s := t.Informer.snapshot()
	s.typedOnce.Do(func() { s.typed = typedSlice[T](s.objs) })
	return s.typed.([]T)
}

// ByIndex returns the objects filed under value in the named index; see
// Informer.ByIndex.
func (t Typed[T]) ByIndex(name, value string) []T {
	return typedSlice[T](t.Informer.ByIndex(name, value))
}

// InNamespace returns the cached objects of namespace ns.
func (t Typed[T]) InNamespace(ns string) []T { return t.ByIndex(IndexNamespace, ns) }

// ControlledBy returns the cached objects whose controller reference has uid.
func (t Typed[T]) ControlledBy(uid string) []T { return t.ByIndex(IndexController, uid) }

// OnNode returns the cached objects bound to node (pods).
func (t Typed[T]) OnNode(node string) []T { return t.ByIndex(IndexNode, node) }

// AddHandler registers h; see Informer.AddHandler.
func (t Typed[T]) AddHandler(h TypedHandler[T]) {
	var uh Handler
	if h.OnAdd != nil {
		uh.OnAdd = func(o api.Object) { h.OnAdd(o.(T)) }
	}
	if h.OnUpdate != nil {
		uh.OnUpdate = func(old, o api.Object) { h.OnUpdate(old.(T), o.(T)) }
	}
	if h.OnDelete != nil {
		uh.OnDelete = func(o api.Object) { h.OnDelete(o.(T)) }
	}
	t.Informer.AddHandler(uh)
}

func typedSlice[T api.Object](objs []api.Object) []T {
	out := make([]T, len(objs))
	for i, o := range objs {
		out[i] = o.(T)
	}
	return out
}
