package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func describeCommand() *cli.Command {
	return &cli.Command{
		Name:      "describe",
		Usage:     "show an object in detail, for people",
		ArgsUsage: "KIND [NAME...] | KIND/NAME...",
		Description: `   cloudbox describe pod web
   cloudbox describe node/worker-1
   cloudbox describe pods                # every pod in the namespace`,
		Flags: append(namespaceFlags(),
			&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label selector"}),
		BashComplete: completeKinds,
		Action: func(c *cli.Context) error {
			targets, err := parseTargets(c.Args().Slice())
			if err != nil {
				return err
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			first := true
			for _, t := range targets {
				ns := namespaceFor(c, t.kind)
				var objs []api.Object
				if len(t.names) == 0 {
					l, err := cl.ListAll(c.Context, t.kind, ns, client.ListOptions{LabelSelector: c.String("selector")})
					if err != nil {
						return err
					}
					objs = l.Items
					sortObjects(objs)
				}
				for _, n := range t.names {
					o, err := cl.Get(c.Context, t.kind, ns, n)
					if err != nil {
						return err
					}
					objs = append(objs, o)
				}
				for _, o := range objs {
					if !first {
						fmt.Fprintln(c.App.Writer)
					}
					first = false
					describe(c.App.Writer, o)
					describeServiceEndpoints(c.Context, c.App.Writer, cl, o)
					describeEvents(c.Context, c.App.Writer, cl, o)
				}
			}
			return nil
		},
	}
}

// describe writes the common metadata, then what the kind has to say.
func describe(w io.Writer, o api.Object) {
	m := o.GetObjectMeta()
	field(w, "Name", m.Name)
	if m.Namespace != "" {
		field(w, "Namespace", m.Namespace)
	}
	field(w, "Labels", mapLines(m.Labels))
	field(w, "Annotations", mapLines(m.Annotations))
	if m.CreationTimestamp != nil {
		field(w, "Created", m.CreationTimestamp.Format("Mon, 02 Jan 2006 15:04:05 -0700")+" ("+age(m.CreationTimestamp)+" ago)")
	}
	switch v := o.(type) {
	case *api.Pod:
		describePod(w, v)
	case *api.Node:
		describeNode(w, v)
	case *api.Namespace:
		field(w, "Status", v.Status.Phase)
	case *api.Deployment:
		describeDeployment(w, v)
	case *api.Service:
		describeService(w, v)
	case *api.Instance:
		describeInstance(w, v)
	case *api.Flavor:
		describeFlavor(w, v)
	case *api.Image:
		describeImage(w, v)
	case *api.VMVolume:
		describeVMVolume(w, v)
	case *api.KeyPair:
		describeKeyPair(w, v)
	default:
		b, _ := yaml.Marshal(o)
		fmt.Fprintf(w, "Object:\n%s", indent(string(b), "  "))
	}
}

func describePod(w io.Writer, p *api.Pod) {
	field(w, "Node", orNone(p.Spec.NodeName))
	field(w, "Status", podStatus(p))
	field(w, "IP", orNone(p.Status.PodIP))
	field(w, "Restart Policy", p.Spec.RestartPolicy)
	if len(p.Spec.NodeSelector) > 0 {
		field(w, "Node-Selectors", mapLines(p.Spec.NodeSelector))
	}
	fmt.Fprintln(w, "Containers:")
	statuses := map[string]api.ContainerStatus{}
	for _, cs := range p.Status.ContainerStatuses {
		statuses[cs.Name] = cs
	}
	for _, ctr := range p.Spec.Containers {
		fmt.Fprintf(w, "  %s:\n", ctr.Name)
		fmt.Fprintf(w, "    Image:     %s\n", ctr.Image)
		if len(ctr.Command) > 0 {
			fmt.Fprintf(w, "    Command:   %s\n", strings.Join(ctr.Command, " "))
		}
		if len(ctr.Args) > 0 {
			fmt.Fprintf(w, "    Args:      %s\n", strings.Join(ctr.Args, " "))
		}
		for _, port := range ctr.Ports {
			fmt.Fprintf(w, "    Port:      %d/%s\n", port.ContainerPort, port.Protocol)
		}
		if r := ctr.Resources.Requests; len(r) > 0 {
			fmt.Fprintf(w, "    Requests:  %s\n", resourceLine(r))
		}
		if l := ctr.Resources.Limits; len(l) > 0 {
			fmt.Fprintf(w, "    Limits:    %s\n", resourceLine(l))
		}
		if cs, ok := statuses[ctr.Name]; ok {
			fmt.Fprintf(w, "    State:     %s\n", containerState(cs.State))
			fmt.Fprintf(w, "    Ready:     %v\n", cs.Ready)
			fmt.Fprintf(w, "    Restarts:  %d\n", cs.RestartCount)
		}
	}
	conditions(w, len(p.Status.Conditions), func(i int) (string, string, string, string) {
		c := p.Status.Conditions[i]
		return c.Type, c.Status, c.Reason, c.Message
	})
}

func describeNode(w io.Writer, n *api.Node) {
	field(w, "Addresses", addressLine(n.Status.Addresses))
	field(w, "Capacity", resourceLine(n.Status.Capacity))
	field(w, "Allocatable", resourceLine(n.Status.Allocatable))
	field(w, "Unschedulable", fmt.Sprint(n.Spec.Unschedulable))
	info := n.Status.NodeInfo
	field(w, "System Info", fmt.Sprintf("OS %s, kernel %s, %s, agent %s", info.OSImage, info.KernelVersion, info.Architecture, info.AgentVersion))
	conditions(w, len(n.Status.Conditions), func(i int) (string, string, string, string) {
		c := n.Status.Conditions[i]
		msg := c.Message
		if c.LastHeartbeatTime != nil {
			msg += " (last heartbeat " + age(c.LastHeartbeatTime) + " ago)"
		}
		return c.Type, c.Status, c.Reason, msg
	})
}

func conditions(w io.Writer, n int, at func(int) (typ, status, reason, msg string)) {
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "Conditions:")
	fmt.Fprintf(w, "  %-16s %-8s %-20s %s\n", "Type", "Status", "Reason", "Message")
	for i := 0; i < n; i++ {
		typ, status, reason, msg := at(i)
		fmt.Fprintf(w, "  %-16s %-8s %-20s %s\n", typ, status, orNone(reason), msg)
	}
}

func containerState(s api.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running since " + age(s.Running.StartedAt)
	case s.Waiting != nil:
		return "Waiting: " + s.Waiting.Reason
	case s.Terminated != nil:
		return fmt.Sprintf("Terminated: %s (exit code %d)", s.Terminated.Reason, s.Terminated.ExitCode)
	}
	return "<none>"
}

func field(w io.Writer, name, value string) {
	if value == "" {
		value = "<none>"
	}
	fmt.Fprintf(w, "%-16s %s\n", name+":", strings.ReplaceAll(value, "\n", "\n"+strings.Repeat(" ", 17)))
}

func mapLines(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + m[k]
	}
	return strings.Join(lines, "\n")
}

func resourceLine(r api.ResourceList) string {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		q := r[k]
		parts[i] = k + "=" + q.String()
	}
	return strings.Join(parts, ", ")
}

func addressLine(as []api.NodeAddress) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Type + "=" + a.Address
	}
	return strings.Join(parts, ", ")
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}
