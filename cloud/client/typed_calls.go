package client

import (
	"context"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// The Client's reads and writes with the Go type of the object (*api.Pod, ...), so
// that callers hold no type assertions and name no kind by a string: the kind is T's,
// and the API answers a read or write of a T with a T.

// NewObject returns an empty object of T's kind with its TypeMeta filled.
func NewObject[T api.Object]() T { return api.KindOfType[T]().NewObject().(T) }

// Get reads the object of T's kind named name in namespace ns ("" for cluster-scoped
// kinds).
func Get[T api.Object](ctx context.Context, c *Client, ns, name string) (T, error) {
	return typed[T](c.Get(ctx, api.KindOfType[T](), ns, name))
}

// ListTyped reads every object of T's kind in namespace ns ("" for all namespaces)
// that opts selects, following continue tokens as ListAll does.
func ListTyped[T api.Object](ctx context.Context, c *Client, ns string, opts ListOptions) ([]T, error) {
	l, err := c.ListAll(ctx, api.KindOfType[T](), ns, opts)
	if err != nil {
		return nil, err
	}
	return typedSlice[T](l.Items), nil
}

// Create writes a new object and returns it as the server stored it.
func Create[T api.Object](ctx context.Context, c *Client, o T) (T, error) {
	return typed[T](c.Create(ctx, o))
}

// Update replaces an object and returns it as the server stored it.
func Update[T api.Object](ctx context.Context, c *Client, o T) (T, error) {
	return typed[T](c.Update(ctx, o))
}

// UpdateStatus replaces an object's status (the status subresource).
func UpdateStatus[T api.Object](ctx context.Context, c *Client, o T) (T, error) {
	return typed[T](c.UpdateStatus(ctx, o))
}

// Modify reads the object, lets mutate change it and writes it back, again on a
// conflict; see Client.Modify.
func Modify[T api.Object](ctx context.Context, c *Client, ns, name string, mutate func(T) error) (T, error) {
	return typed[T](c.Modify(ctx, api.KindOfType[T](), ns, name, untypedMutate(mutate)))
}

// ModifyStatus is Modify for the status subresource; see Client.ModifyStatus.
func ModifyStatus[T api.Object](ctx context.Context, c *Client, ns, name string, mutate func(T) error) (T, error) {
	return typed[T](c.ModifyStatus(ctx, api.KindOfType[T](), ns, name, untypedMutate(mutate)))
}

// Delete removes the object of T's kind named name in namespace ns and returns its
// last state; see Client.Delete.
func Delete[T api.Object](ctx context.Context, c *Client, ns, name string) (T, error) {
	return typed[T](c.Delete(ctx, api.KindOfType[T](), ns, name))
}

// decode reads an answer about T's kind.
func decode[T api.Object](data []byte) (T, error) {
	return typed[T](decodeAs(api.KindOfType[T](), data))
}

func untypedMutate[T api.Object](mutate func(T) error) func(api.Object) error {
	return func(o api.Object) error { return mutate(o.(T)) }
}

// typed gives a call's answer T's type: the server answers a request about T's kind
// with an object of that kind.
func typed[T api.Object](o api.Object, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return o.(T), nil
}
