package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// justStarted is how long after a cluster's first start an empty node list is taken
// for a node agent that has not registered yet, rather than for a master no worker
// joined.
const justStarted = 2 * time.Minute

// printNoResources says on w that a list came back empty, in kubectl's words; for
// an empty node list that no selector narrowed it adds what to do about it.
func printNoResources(ctx context.Context, w io.Writer, cl *client.Client, k *api.KindInfo, ns string, filtered bool) {
	if ns != "" {
		fmt.Fprintf(w, "No resources found in %s namespace.\n", ns)
		return
	}
	fmt.Fprintln(w, "No resources found")
	if k.Resource == "nodes" && !filtered {
		fmt.Fprintln(w, noNodesHint(ctx, cl, time.Now()))
	}
}

// noNodesHint explains an empty node list: the cluster's age is its default
// namespace's, made at the first start.
func noNodesHint(ctx context.Context, cl *client.Client, now time.Time) string {
	ns, err := client.Get[*api.Namespace](ctx, cl, "", "default")
	if err == nil {
		if created := ns.CreationTimestamp; created != nil {
			if age := now.Sub(created.Time); age < justStarted {
				return fmt.Sprintf("The server started %s ago: an all-in-one server's node agent registers within a few seconds of the start ('cloudbox wait --for=condition=Ready node --all' waits for it).",
					age.Round(time.Second))
			}
		}
	}
	return "No node has joined this cluster: run 'cloudbox server' (all-in-one), or join a worker with 'cloudbox server --role worker --join URL --token TOKEN'."
}
