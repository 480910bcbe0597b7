package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() { registerCommand(waitCommand()) }

func waitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait until objects meet a condition, as kubectl wait",
		ArgsUsage: "KIND NAME... | KIND/NAME... | KIND --all | KIND -l SELECTOR",
		Description: `Waits until every object named (or every one --all or -l selects) meets --for,
then prints "KIND/NAME condition met"; on --timeout it says what it still waited for
and exits 1.

   cloudbox wait --for=condition=Ready node --all --timeout 2m
   cloudbox wait --for=jsonpath='{.spec.podCIDR}' node --all    # the field is set
   cloudbox wait --for=condition=Available deploy/web
   cloudbox wait --for=jsonpath='{.status.state}'=ACTIVE instance/demo
   cloudbox wait --for=delete pod/web --timeout 1m

Unlike kubectl, --all and -l wait for at least one object to exist, and a server that
is still starting (no admin.config yet, or not answering) is waited for too: so a
script can start a server and wait for its node in one step.`,
		Flags: append(namespaceFlags(),
			&cli.StringFlag{Name: "for", Required: true, Usage: "condition=TYPE[=STATUS], jsonpath={.FIELD}[=VALUE] or delete"},
			&cli.BoolFlag{Name: "all", Usage: "every object of the kind (in the namespace)"},
			&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label selector, e.g. app=web"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "how long to wait"},
		),
		Action:       runWait,
		BashComplete: completeKinds,
	}
}

func runWait(c *cli.Context) error {
	cond, err := parseWaitFor(c.String("for"))
	if err != nil {
		return err
	}
	targets, err := parseTargets(c.Args().Slice())
	if err != nil {
		return err
	}
	for _, t := range targets {
		if len(t.names) == 0 && !c.Bool("all") && c.String("selector") == "" {
			return fmt.Errorf("%s: name the objects to wait for, or pass --all or -l SELECTOR", t.kind.Resource)
		}
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	for _, t := range targets {
		w := &waiter{cond: cond, kind: t.kind, ns: namespaceFor(c, t.kind), names: t.names, selector: c.String("selector")}
		if err := w.run(ctx, c); err != nil {
			return err
		}
		for _, name := range w.satisfied() {
			fmt.Fprintf(c.App.Writer, "%s/%s condition met\n", t.kind.Singular, name)
		}
	}
	return nil
}

// waiter waits for the objects of one kind. It lists, then follows a watch, and
// starts over when the watch ends or the server cannot be reached.
type waiter struct {
	cond     *waitCondition
	kind     *api.KindInfo
	ns       string
	names    []string // empty: every object the selector matches
	selector string
	objs     map[string]api.Object // by name (ns/name across namespaces)
	lastErr  error
}

// retryPause is how long a waiter waits before reaching a server it could not reach:
// a server that is starting has nothing to be watched yet.
const retryPause = 500 * time.Millisecond

func (w *waiter) run(ctx context.Context, c *cli.Context) error {
	for {
		cl, err := newClient(c)
		if err == nil {
			var done bool
			if done, err = w.follow(ctx, cl); done {
				return nil
			}
		}
		if err != nil {
			if fatalWaitError(err) {
				return err
			}
			w.lastErr = err
		}
		select {
		case <-ctx.Done():
			if c.Context.Err() != nil {
				return c.Context.Err()
			}
			return cli.Exit(w.timeoutMessage(c.Duration("timeout")), 1)
		case <-time.After(retryPause):
		}
	}
}

// follow lists the objects and watches them until the condition holds (true), the
// watch ends, or it fails.
func (w *waiter) follow(ctx context.Context, cl *client.Client) (bool, error) {
	l, err := cl.ListAll(ctx, w.kind, w.ns, client.ListOptions{LabelSelector: w.selector})
	if err != nil {
		return false, err
	}
	w.objs = map[string]api.Object{}
	for _, o := range l.Items {
		w.objs[w.key(o)] = o
	}
	if w.done() {
		return true, nil
	}
	events, err := cl.Watch(ctx, w.kind, w.ns, client.ListOptions{LabelSelector: w.selector, ResourceVersion: l.ResourceVersion})
	if err != nil {
		return false, err
	}
	for ev := range events {
		switch {
		case ev.Err != nil:
			return false, ev.Err
		case ev.Type == "BOOKMARK":
			continue
		case ev.Type == "DELETED":
			delete(w.objs, w.key(ev.Object))
		default:
			w.objs[w.key(ev.Object)] = ev.Object
		}
		if w.done() {
			return true, nil
		}
	}
	return false, nil
}

func (w *waiter) key(o api.Object) string {
	m := o.GetObjectMeta()
	if w.ns == "" && m.Namespace != "" && len(w.names) == 0 {
		return m.Namespace + "/" + m.Name
	}
	return m.Name
}

// pending lists the names that do not meet the condition yet.
func (w *waiter) pending() []string {
	var out []string
	if len(w.names) > 0 {
		for _, n := range w.names {
			if !w.cond.met(w.objs[n]) {
				out = append(out, n)
			}
		}
		return out
	}
	for name, o := range w.objs {
		if !w.cond.met(o) {
			out = append(out, name)
		}
	}
	return out
}

func (w *waiter) done() bool {
	if len(w.names) == 0 && len(w.objs) == 0 && !w.cond.delete {
		return false
	}
	return len(w.pending()) == 0
}

// satisfied lists what met the condition, in order, for the "condition met" lines.
func (w *waiter) satisfied() []string {
	if len(w.names) > 0 {
		return w.names
	}
	names := make([]string, 0, len(w.objs))
	for name := range w.objs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (w *waiter) timeoutMessage(timeout time.Duration) string {
	var what string
	switch p := w.pending(); {
	case w.objs == nil:
		what = fmt.Sprintf("%s: the server never answered", w.kind.Resource)
	case len(p) == 0 && len(w.objs) == 0:
		what = fmt.Sprintf("%s: none found yet", w.kind.Resource)
	default:
		slices.Sort(p)
		for i := range p {
			p[i] = w.kind.Singular + "/" + p[i]
		}
		what = strings.Join(p, ", ")
	}
	msg := fmt.Sprintf("timed out after %s waiting for %s on %s", timeout, w.cond.text, what)
	if w.lastErr != nil {
		msg += fmt.Sprintf(" (last error: %v)", w.lastErr)
	}
	return msg
}

// fatalWaitError reports whether waiting longer cannot help: the request itself was
// refused. A server that is not up yet, or a watch that expired, is retried.
func fatalWaitError(err error) bool {
	switch client.Reason(err) {
	case "Forbidden", "Unauthorized", "BadRequest", "Invalid", "MethodNotAllowed":
		return true
	}
	return false
}
