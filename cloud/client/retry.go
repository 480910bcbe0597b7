package client

import (
	"context"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Modify reads an object, lets mutate change it, and writes it back, reading again
// and retrying when another writer (often an agent or controller writing status) got
// there first. mutate may return an error to stop without writing.
func (c *Client) Modify(ctx context.Context, k *api.KindInfo, namespace, name string, mutate func(api.Object) error) (api.Object, error) {
	for attempt := 0; ; attempt++ {
		o, err := c.Get(ctx, k, namespace, name)
		if err != nil {
			return nil, err
		}
		if err := mutate(o); err != nil {
			return nil, err
		}
		out, err := c.Update(ctx, o)
		if IsConflict(err) && attempt < 10 {
			continue
		}
		return out, err
	}
}
