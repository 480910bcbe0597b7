package client

import (
	"context"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Modify reads an object, lets mutate change it, and writes it back, reading again
// and retrying when another writer (often an agent or controller writing status) got
// there first. mutate may return an error to stop without writing.
func (c *Client) Modify(ctx context.Context, k *api.KindInfo, namespace, name string, mutate func(api.Object) error) (api.Object, error) {
	return c.modify(ctx, k, namespace, name, mutate, c.Update)
}

// ModifyStatus is Modify for the status subresource: mutate changes the object's
// status, which is written with UpdateStatus.
func (c *Client) ModifyStatus(ctx context.Context, k *api.KindInfo, namespace, name string, mutate func(api.Object) error) (api.Object, error) {
	return c.modify(ctx, k, namespace, name, mutate, c.UpdateStatus)
}

func (c *Client) modify(ctx context.Context, k *api.KindInfo, namespace, name string, mutate func(api.Object) error,
	write func(context.Context, api.Object) (api.Object, error)) (api.Object, error) {
	for attempt := 0; ; attempt++ {
		o, err := c.Get(ctx, k, namespace, name)
		if err != nil {
			return nil, err
		}
		if err := mutate(o); err != nil {
			return nil, err
		}
		out, err := write(ctx, o)
		if IsConflict(err) && attempt < 10 {
			continue
		}
		return out, err
	}
}
