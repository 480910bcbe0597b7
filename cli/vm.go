package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() { registerCommand(vmCommand()) }

// consoleDetach is Ctrl-], the key telnet and virsh console detach with.
const consoleDetach = 0x1d

func vmCommand() *cli.Command {
	nsFlag := &cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"}
	outFlag := &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json, yaml, wide or name"}
	power := func(name, usage, state string) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, ArgsUsage: "NAME", Flags: []cli.Flag{nsFlag},
			Action: func(c *cli.Context) error { return vmSetPower(c, state) }}
	}
	return &cli.Command{
		Name:  "vm",
		Usage: "create and run virtual machines (instances)",
		Description: `A VM (an Instance) is made from an image ('cloudbox image import ... --name N')
and a flavor ('cloudbox flavor list'), in a namespace, as 'openstack server' makes
them. Its state is Nova's: BUILD, ACTIVE, SHUTOFF, PAUSED, REBOOT, ERROR.

   cloudbox vm create web-1 --image debian-12 --flavor m1.small --key-pair me --wait
   cloudbox vm list -o wide
   cloudbox vm show web-1
   cloudbox vm stop web-1 && cloudbox vm start web-1
   cloudbox vm reboot --hard web-1
   cloudbox vm console web-1              # the serial console; Ctrl-] detaches
   cloudbox vm console-log web-1 --tail 50
   cloudbox vm delete web-1 --wait`,
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a VM from an image and a flavor",
				ArgsUsage: "NAME --image IMAGE --flavor FLAVOR",
				Description: `The VM starts as soon as a node with room for its flavor takes it.

   cloudbox vm create web-1 --image debian-12 --flavor m1.small
   cloudbox vm create db --image debian-12 --flavor m1.large --volume db-data --key-pair me \
       --user-data cloud-init.yaml --wait
   cloudbox vm create lab --image tiny-kernel --flavor m1.tiny --network user

--user-data is handed to cloud-init as is (a #cloud-config file or a script); "-"
reads it from standard input. --wait follows the VM's state, printing each change,
until ACTIVE (exit 0) or ERROR (exit 1).`,
				Flags: []cli.Flag{nsFlag,
					&cli.StringFlag{Name: "image", Usage: "the image to boot (cloudbox image ls)", Required: true},
					&cli.StringFlag{Name: "flavor", Usage: "the size: vCPUs, RAM and disk (cloudbox flavor list)", Required: true},
					&cli.StringFlag{Name: "key-pair", Aliases: []string{"key-name"}, Usage: "a key pair whose public key the VM authorizes (cloudbox keypair list)"},
					&cli.StringFlag{Name: "user-data", Usage: "a file handed to cloud-init as user-data (- for standard input)"},
					&cli.StringSliceFlag{Name: "volume", Usage: "a volume to attach (repeatable; cloudbox volume list)"},
					&cli.StringFlag{Name: "network", Value: api.NetworkPod, Usage: "pod (an address on the pod network) or user (QEMU's NAT, unreachable from outside)"},
					&cli.StringFlag{Name: "availability-zone", Usage: "run only on nodes of this zone (topology.kubernetes.io/zone)"},
					&cli.BoolFlag{Name: "wait", Usage: "wait until the VM is ACTIVE, printing each state; exit 1 on ERROR"},
					&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "with --wait: how long to wait"},
				},
				Action: vmCreate,
			},
			{Name: "list", Aliases: []string{"ls"}, Usage: "list VMs", Flags: []cli.Flag{nsFlag, outFlag,
				&cli.BoolFlag{Name: "all-namespaces", Aliases: []string{"A"}, Usage: "every namespace"},
				&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label selector"}},
				Action: vmList},
			{Name: "show", Usage: "show a VM in detail: spec, status, volumes, events", ArgsUsage: "NAME",
				Flags:  []cli.Flag{nsFlag, &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json or yaml instead of text"}},
				Action: vmShow},
			power("start", "start a stopped VM (power state Running)", api.PowerRunning),
			power("stop", "stop a VM: ACPI power button, forced off after a timeout (power state Stopped)", api.PowerStopped),
			power("pause", "freeze a running VM's vCPUs (power state Paused)", api.PowerPaused),
			power("resume", "unfreeze a paused VM (power state Running)", api.PowerRunning),
			{Name: "reboot", Usage: "reboot a VM: soft (the guest reboots itself) or --hard (reset)", ArgsUsage: "NAME",
				Flags:  []cli.Flag{nsFlag, &cli.BoolFlag{Name: "hard", Usage: "reset at once instead of asking the guest"}},
				Action: vmReboot},
			{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a VM and its disk (volumes stay)", ArgsUsage: "NAME",
				Flags:  []cli.Flag{nsFlag, &cli.BoolFlag{Name: "wait", Usage: "wait until the VM has stopped and the instance is gone"}},
				Action: vmDelete},
			{Name: "console", Usage: "attach to a VM's serial console (Ctrl-] detaches)", ArgsUsage: "NAME",
				Description: `An interactive session on the VM's first serial port, as 'virsh console':
what the guest prints, and what you type goes to it. Ctrl-] detaches; the VM runs on.

   cloudbox vm console web-1`,
				Flags:  []cli.Flag{nsFlag},
				Action: vmConsole},
			{Name: "console-log", Usage: "print what the VM wrote to its serial console", ArgsUsage: "NAME",
				Description: `Everything the VM wrote since the instance was created, across its runs. A
stopped (SHUTOFF) or failed (ERROR) VM's log is read from the node that ran it last,
which keeps it until the instance is deleted (-f has nothing to follow then).

   cloudbox vm console-log web-1
   cloudbox vm console-log web-1 -f --tail 20`,
				Flags: []cli.Flag{nsFlag,
					&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new output"},
					&cli.IntFlag{Name: "tail", Value: -1, Usage: "lines from the end to start with (-1: all)"}},
				Action: vmConsoleLog},
		},
	}
}

var instanceKind = api.KindOfType[*api.Instance]()

// oneName returns the command's single NAME argument.
func oneName(c *cli.Context) (string, error) {
	if c.Args().Len() != 1 {
		return "", fmt.Errorf("usage: cloudbox %s %s", c.Command.FullName(), c.Command.ArgsUsage)
	}
	return c.Args().First(), nil
}

// readFileFlag reads the file a flag names, or standard input for "-".
func readFileFlag(c *cli.Context, flag string) ([]byte, error) {
	var b []byte
	var err error
	if p := c.String(flag); p == "-" {
		b, err = io.ReadAll(c.App.Reader)
	} else {
		b, err = os.ReadFile(p)
	}
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	return b, nil
}

// nameAndClient returns the command's NAME argument and an API client.
func nameAndClient(c *cli.Context) (string, *client.Client, error) {
	name, err := oneName(c)
	if err != nil {
		return "", nil, err
	}
	cl, err := newClient(c)
	return name, cl, err
}

func vmCreate(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	in := client.NewObject[*api.Instance]()
	in.Name, in.Namespace = name, c.String("namespace")
	in.Spec = api.InstanceSpec{
		Image: c.String("image"), Flavor: c.String("flavor"), KeyPair: c.String("key-pair"),
		Volumes: c.StringSlice("volume"), Networks: []string{c.String("network")},
		AvailabilityZone: c.String("availability-zone"),
	}
	if c.String("user-data") != "" {
		b, err := readFileFlag(c, "user-data")
		if err != nil {
			return err
		}
		in.Spec.UserData = string(b)
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	if err := checkVMRefs(c.Context, cl, in); err != nil {
		return err
	}
	created, err := client.Create(c.Context, cl, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "instance/%s created\n", name)
	if !c.Bool("wait") {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	return waitActive(ctx, c.App.Writer, cl, created)
}

// checkVMRefs says at once when the image, flavor, key pair or a volume does not
// exist, instead of leaving an instance in ERROR for it.
func checkVMRefs(ctx context.Context, cl *client.Client, in *api.Instance) error {
	type ref struct{ resource, ns, name, flag, hint string }
	refs := []ref{
		{"images", "", in.Spec.Image, "--image", "cloudbox image ls"},
		{"flavors", "", in.Spec.Flavor, "--flavor", "cloudbox flavor list"},
		{"keypairs", in.Namespace, in.Spec.KeyPair, "--key-pair", "cloudbox keypair list -n " + in.Namespace},
	}
	for _, v := range in.Spec.Volumes {
		refs = append(refs, ref{"volumes", in.Namespace, v, "--volume", "cloudbox volume list -n " + in.Namespace})
	}
	for _, r := range refs {
		if r.name == "" {
			continue
		}
		_, err := cl.Get(ctx, api.MustKind(r.resource), r.ns, r.name)
		if client.IsNotFound(err) {
			return fmt.Errorf("%s %q: no such %s (see '%s')", r.flag, r.name, api.MustKind(r.resource).Singular, r.hint)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// waitActive prints each state the instance goes through until it is ACTIVE (nil)
// or in ERROR (exit code 1, with the reason).
func waitActive(ctx context.Context, w io.Writer, cl *client.Client, in *api.Instance) error {
	events, err := cl.Watch(ctx, instanceKind, in.Namespace, client.ListOptions{
		FieldSelector: "metadata.name=" + in.Name, ResourceVersion: in.ResourceVersion})
	if err != nil {
		return err
	}
	last := ""
	report := func(in *api.Instance) (bool, error) {
		st := instanceStatus(in)
		line := st
		if in.Status.Reason != "" {
			line += " (" + in.Status.Reason + ")"
		}
		if line != last {
			fmt.Fprintf(w, "%s: %s\n", in.Name, line)
			last = line
		}
		switch st {
		case api.InstanceActive:
			return true, nil
		case api.InstanceError:
			return true, cli.Exit(fmt.Sprintf("instance %s failed: %s: %s", in.Name, orNone(in.Status.Reason), in.Status.Message), 1)
		}
		return false, nil
	}
	if done, err := report(in); done {
		return err
	}
	for ev := range events {
		if ev.Err != nil {
			return ev.Err
		}
		if ev.Type == "DELETED" {
			return cli.Exit(fmt.Sprintf("instance %s was deleted", in.Name), 1)
		}
		if cur, ok := ev.Object.(*api.Instance); ok {
			if done, err := report(cur); done {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return cli.Exit(fmt.Sprintf("instance %s is still %s: gave up waiting (--timeout)", in.Name, last), 1)
	}
	return errors.New("the watch ended before the instance was ACTIVE")
}

func vmList(c *cli.Context) error { return listObjects(c, instanceKind) }

// listObjects prints the objects of a kind in the namespace (-A: every namespace) as
// the table or the -o format asks.
func listObjects(c *cli.Context, k *api.KindInfo) error {
	out := c.String("output")
	switch out {
	case "", "json", "yaml", "wide", "name":
	default:
		return fmt.Errorf("--output %q: use json, yaml, wide or name", out)
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	ns := namespaceFor(c, k)
	l, err := cl.ListAll(c.Context, k, ns, client.ListOptions{LabelSelector: c.String("selector")})
	if err != nil {
		return err
	}
	sortObjects(l.Items)
	if len(l.Items) == 0 && out == "" {
		printNoResources(c.Context, c.App.ErrWriter, cl, k, ns, c.String("selector") != "")
		return nil
	}
	return printObjects(c.App.Writer, k, l.Items, out, k.Namespaced && ns == "", false)
}

// showNamed prints the command's NAME of kind k as json or yaml, or describes it
// with its events.
func showNamed(c *cli.Context, k *api.KindInfo, namespace string) error {
	out := c.String("output")
	if out != "" && out != "json" && out != "yaml" {
		return fmt.Errorf("--output %q: use json or yaml", out)
	}
	name, cl, err := nameAndClient(c)
	if err != nil {
		return err
	}
	o, err := cl.Get(c.Context, k, namespace, name)
	if err != nil {
		return err
	}
	if out != "" {
		return encode(c.App.Writer, o, out)
	}
	describe(c.App.Writer, o)
	describeEvents(c.Context, c.App.Writer, cl, o)
	return nil
}

func vmShow(c *cli.Context) error { return showNamed(c, instanceKind, c.String("namespace")) }

// modifyInstance changes an instance through client.Modify (which retries when the
// node's status writes get in between) and returns the old and new specs.
func modifyInstance(c *cli.Context, name string, change func(*api.Instance) error) (*api.Instance, error) {
	cl, err := newClient(c)
	if err != nil {
		return nil, err
	}
	return client.Modify(c.Context, cl, c.String("namespace"), name, change)
}

func vmSetPower(c *cli.Context, state string) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	was := ""
	in, err := modifyInstance(c, name, func(in *api.Instance) error {
		was = in.Spec.PowerState
		in.Spec.PowerState = state
		return nil
	})
	if err != nil {
		return err
	}
	if was == state {
		fmt.Fprintf(c.App.Writer, "instance/%s is already asked to be %s (status %s)\n", name, state, instanceStatus(in))
		return nil
	}
	fmt.Fprintf(c.App.Writer, "instance/%s power state %s (was %s)\n", name, state, was)
	return nil
}

func vmReboot(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	typ := api.RebootSoft
	if c.Bool("hard") {
		typ = api.RebootHard
	}
	// The id only has to differ from the last one; a timestamp also tells when.
	id := time.Now().UTC().Format(time.RFC3339Nano)
	_, err = modifyInstance(c, name, func(in *api.Instance) error {
		if in.Spec.PowerState != api.PowerRunning {
			return fmt.Errorf("instance %s is asked to be %s: start it instead of rebooting it", name, in.Spec.PowerState)
		}
		in.Spec.Reboot = &api.RebootRequest{Type: typ, ID: id}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "instance/%s %s reboot requested\n", name, typ)
	return nil
}

// vmDelete deletes the instance; with --wait it returns once the VM itself has
// stopped too (its launcher pod gone, so its memory and disk are free), not only the
// Instance object.
func vmDelete(c *cli.Context) error {
	name, cl, err := nameAndClient(c)
	if err != nil {
		return err
	}
	ns := c.String("namespace")
	pod, err := client.Get[*api.Pod](c.Context, cl, ns, api.InstancePodName(name))
	if err != nil && !client.IsNotFound(err) {
		return err
	}
	o, err := cl.Delete(c.Context, instanceKind, ns, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s/%s deleted\n", instanceKind.Singular, name)
	if !c.Bool("wait") {
		return nil
	}
	if err := waitGone(c.Context, cl, o); err != nil {
		return err
	}
	if pod != nil && pod.IsControlledBy(o.GetObjectMeta().UID) {
		return waitGone(c.Context, cl, pod)
	}
	return nil
}

// launcherPod finds the pod that runs the command's NAME instance, or says why there
// is none yet; it returns the instance's name, a client, and the pod's namespace and
// name.
func launcherPod(c *cli.Context) (name string, cl *client.Client, ns, pod string, err error) {
	if name, cl, err = nameAndClient(c); err != nil {
		return
	}
	ns = c.String("namespace")
	inst, err := client.Get[*api.Instance](c.Context, cl, ns, name)
	if err != nil {
		return
	}
	pod = api.InstancePodName(name)
	// A launcher pod that no node runs yet has no console either.
	po, err := client.Get[*api.Pod](c.Context, cl, ns, pod)
	if client.IsNotFound(err) || (err == nil && po.Spec.NodeName == "") {
		err = &noConsoleError{inst: inst}
	}
	return
}

// noConsoleError says that no node runs an instance's VM now (it is stopped, failed,
// or not placed yet).
type noConsoleError struct{ inst *api.Instance }

func (e *noConsoleError) Error() string {
	return fmt.Sprintf("instance %s has no console yet (status %s): it has one once a node runs it", e.inst.Name, instanceStatus(e.inst))
}

func vmConsole(c *cli.Context) error {
	name, cl, ns, pod, err := launcherPod(c)
	if err != nil {
		return err
	}
	ctx, detach := context.WithCancel(c.Context)
	defer detach()
	opts := client.ExecOptions{Container: "vm", Command: []string{"console"}, Stdout: c.App.Writer, Stderr: c.App.ErrWriter,
		Stdin: &detachReader{r: c.App.Reader, detach: detach}}
	fmt.Fprintf(c.App.ErrWriter, "Connected to %s's console; Ctrl-] to detach.\r\n", name)
	// A real terminal goes raw, so keys reach the guest as typed; piped input is
	// passed on as it is.
	if restore, err := rawTerminal(c, &opts); err == nil {
		opts.TTY = true
		defer restore()
	}
	_, err = cl.Exec(ctx, ns, pod, opts)
	if ctx.Err() != nil && c.Context.Err() == nil {
		fmt.Fprint(c.App.ErrWriter, "\r\nDetached.\r\n")
		return nil
	}
	return err
}

// detachReader passes input on up to a Ctrl-], then cancels the session. Filtering
// on the client keeps the key from ever reaching the guest.
type detachReader struct {
	r      io.Reader
	detach func()
	done   bool
}

func (d *detachReader) Read(p []byte) (int, error) {
	if d.done {
		return 0, io.EOF
	}
	n, err := d.r.Read(p)
	if i := strings.IndexByte(string(p[:n]), consoleDetach); i >= 0 {
		d.done = true
		d.detach()
		return i, io.EOF
	}
	return n, err
}

// vmConsoleLog prints a running VM's console log through its launcher pod, and a
// stopped or failed one's from the node that ran it last, which keeps it until the
// instance is deleted (as Nova does).
func vmConsoleLog(c *cli.Context) error {
	_, cl, ns, pod, err := launcherPod(c)
	var stopped *noConsoleError
	if errors.As(err, &stopped) && stopped.inst.Status.NodeName != "" {
		return copyStream(c, func(opts client.LogOptions) (io.ReadCloser, error) {
			return cl.ConsoleLog(c.Context, ns, stopped.inst.Name, opts)
		}, client.LogOptions{})
	}
	if err != nil {
		return err
	}
	return copyLogs(c, cl, ns, pod, client.LogOptions{Container: "vm", Follow: c.Bool("follow")})
}
