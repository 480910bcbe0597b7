package apiserver

import (
	"context"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/store"
)

// The store's reads and writes, and decoding, with the Go type of the object, for the
// server's own use of the kinds it names (the namespace a create goes into, the
// Services whose addresses it restores): the store answers a request about T's kind
// with a T.

// newObject returns an empty object of T's kind with its TypeMeta filled.
func newObject[T api.Object]() T { return api.KindOfType[T]().NewObject().(T) }

// decodeAs decodes body as an object of T's kind; see api.DecodeObject.
func decodeAs[T api.Object](body []byte) (T, error) {
	return typed[T](api.DecodeObject(api.KindOfType[T](), body))
}

// storeGet reads the object of T's kind named name in namespace ns.
func storeGet[T api.Object](ctx context.Context, st store.Store, ns, name string) (T, error) {
	return typed[T](st.Get(ctx, api.KindOfType[T](), ns, name))
}

// storeList reads every object of T's kind, in every namespace.
func storeList[T api.Object](ctx context.Context, st store.Store) ([]T, error) {
	l, err := st.List(ctx, api.KindOfType[T](), store.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]T, len(l.Items))
	for i, o := range l.Items {
		out[i] = o.(T)
	}
	return out, nil
}

// storeUpdate changes the object of T's kind named name in namespace ns with fn, as
// store.GuaranteedUpdate does.
func storeUpdate[T api.Object](ctx context.Context, st store.Store, ns, name string, fn func(T) (T, error)) (T, error) {
	return typed[T](st.GuaranteedUpdate(ctx, api.KindOfType[T](), ns, name, func(cur api.Object) (api.Object, error) {
		next, err := fn(cur.(T))
		if err != nil {
			// Not next: a nil T would reach the store as a non-nil api.Object.
			return nil, err
		}
		return next, nil
	}))
}

func typed[T api.Object](o api.Object, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return o.(T), nil
}
