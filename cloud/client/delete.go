package client

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// DeleteOptions are the options of DeleteWithOptions. The zero value deletes as
// Delete does.
type DeleteOptions struct {
	// GracePeriodSeconds is a pod's time to stop; nil means its own
	// terminationGracePeriodSeconds, 0 removes it at once.
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`
	// PropagationPolicy is api.PropagationBackground (if empty), PropagationOrphan
	// (dependents are kept and lose their owner reference) or PropagationForeground.
	PropagationPolicy string `json:"propagationPolicy,omitempty"`
}

// DeleteWithOptions is Delete with a grace period and a propagation policy. An
// object with finalizers (or that the policy gives one) is only marked for deletion
// and returned with its deletionTimestamp set.
func (c *Client) DeleteWithOptions(ctx context.Context, k *api.KindInfo, namespace, name string, opts DeleteOptions) (api.Object, error) {
	body, err := json.Marshal(struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		DeleteOptions
	}{"v1", "DeleteOptions", opts})
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodDelete, path(k, namespace, name, ""), nil, "application/json", body, &raw); err != nil {
		return nil, err
	}
	return decodeAs(k, raw)
}
