package controller

import (
	"context"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// The client's reads and writes with the Go type of the object, so that the
// controllers hold no type assertions: the API answers a write of a T with a T.

// newObject returns an empty object of T's kind with its TypeMeta filled.
func newObject[T api.Object]() T { return api.KindOfType[T]().NewObject().(T) }

// get reads the object of T's kind named name in namespace ns.
func get[T api.Object](ctx context.Context, cl *client.Client, ns, name string) (T, error) {
	return typed[T](cl.Get(ctx, api.KindOfType[T](), ns, name))
}

func create[T api.Object](ctx context.Context, cl *client.Client, o T) (T, error) {
	return typed[T](cl.Create(ctx, o))
}

func update[T api.Object](ctx context.Context, cl *client.Client, o T) (T, error) {
	return typed[T](cl.Update(ctx, o))
}

func updateStatus[T api.Object](ctx context.Context, cl *client.Client, o T) (T, error) {
	return typed[T](cl.UpdateStatus(ctx, o))
}

// modify reads the object, lets mutate change it and writes it back, again on a
// conflict (client.Modify).
func modify[T api.Object](ctx context.Context, cl *client.Client, ns, name string, mutate func(T) error) (T, error) {
	return typed[T](cl.Modify(ctx, api.KindOfType[T](), ns, name, func(o api.Object) error { return mutate(o.(T)) }))
}

// modifyStatus is modify for the status subresource (client.ModifyStatus).
func modifyStatus[T api.Object](ctx context.Context, cl *client.Client, ns, name string, mutate func(T) error) (T, error) {
	return typed[T](cl.ModifyStatus(ctx, api.KindOfType[T](), ns, name, func(o api.Object) error { return mutate(o.(T)) }))
}

func typed[T api.Object](o api.Object, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return o.(T), nil
}
