package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/cloud/controller"
)

// createJobCommand is `cloudbox create job`.
func createJobCommand() *cli.Command {
	return &cli.Command{
		Name:      "job",
		Usage:     "run a CronJob's Job now",
		ArgsUsage: "NAME --from cronjob/CRONJOB",
		Description: `   cloudbox create job backup-now --from cronjob/backup
   The Job is the CronJob's jobTemplate, owned by the CronJob and marked
   cronjob.kubernetes.io/instantiate=manual.`,
		Flags: append(namespaceFlags()[:1],
			&cli.StringFlag{Name: "from", Required: true, Usage: "the object to copy: cronjob/NAME"},
		),
		Action: createJobFrom,
	}
}

func createJobFrom(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("name the Job to create: cloudbox create job NAME --from cronjob/CRONJOB")
	}
	name := c.Args().First()
	kindName, cronName, ok := strings.Cut(c.String("from"), "/")
	k, known := api.LookupKind(kindName)
	if !ok || cronName == "" || !known || k.Kind != "CronJob" {
		return fmt.Errorf("--from %q: only cronjob/NAME is supported", c.String("from"))
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	cron, err := client.Get[*api.CronJob](c.Context, cl, c.String("namespace"), cronName)
	if err != nil {
		return err
	}
	job := controller.CronJobJob(cron, name)
	job.Annotations[api.AnnotationCronJobInstantiate] = "manual"
	if _, err := cl.Create(c.Context, job); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "job.batch/%s created\n", name)
	return nil
}

// describeEvents ends describe's output with the events about o, oldest first; a
// failure to list them leaves the section out (describe has said what it could).
func describeEvents(ctx context.Context, w io.Writer, cl *client.Client, o api.Object) {
	m := o.GetObjectMeta()
	ns := m.Namespace
	if ns == "" {
		ns = "default"
	}
	sel := "involvedObject.name=" + m.Name
	if kind, ok := api.KindOf(o); ok {
		sel += ",involvedObject.kind=" + kind.Kind
	}
	if m.UID != "" {
		sel += ",involvedObject.uid=" + m.UID
	}
	events, err := client.ListTyped[*api.Event](ctx, cl, ns, client.ListOptions{FieldSelector: sel})
	if err != nil {
		return
	}
	if len(events) == 0 {
		fmt.Fprintln(w, "Events:  <none>")
		return
	}
	sortEventsByLastSeen(events)
	fmt.Fprintln(w, "Events:")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Type\tReason\tAge\tFrom\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t---\t----\t-------")
	for _, e := range events {
		a := eventAge(e)
		if e.Count > 1 {
			a = fmt.Sprintf("%s (x%d over %s)", a, e.Count, age(e.FirstTimestamp))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.Type, e.Reason, a, e.Source.Component, e.Message)
	}
	_ = tw.Flush()
}
