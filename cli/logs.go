package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print a container's log",
		ArgsUsage: "POD",
		Description: `The log comes from the pod's node through the agent's tunnel, so it works for
workers behind NAT too.

   cloudbox logs web
   cloudbox logs web -c sidecar -f
   cloudbox logs web --previous --tail 20      # the run before the last restart`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"},
			&cli.StringFlag{Name: "container", Aliases: []string{"c"}, Usage: "the container (needed when the pod has several)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines"},
			&cli.BoolFlag{Name: "previous", Aliases: []string{"p"}, Usage: "the log of the previous run of the container"},
			&cli.IntFlag{Name: "tail", Value: -1, Usage: "lines from the end to start with (-1: all)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return fmt.Errorf("usage: cloudbox logs POD [-c CONTAINER] [-f]")
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			opts := client.LogOptions{Container: c.String("container"), Follow: c.Bool("follow"), Previous: c.Bool("previous")}
			return copyLogs(c, cl, c.String("namespace"), c.Args().First(), opts)
		},
	}
}

// copyLogs prints a container's log, from --tail lines before the end if the
// command has that flag, until it ends (or, with Follow, until interrupted).
func copyLogs(c *cli.Context, cl *client.Client, namespace, pod string, opts client.LogOptions) error {
	return copyStream(c, func(opts client.LogOptions) (io.ReadCloser, error) {
		return cl.Logs(c.Context, namespace, pod, opts)
	}, opts)
}

// copyStream opens a log with opts and the command's --tail, and copies it to the
// command's output.
func copyStream(c *cli.Context, open func(client.LogOptions) (io.ReadCloser, error), opts client.LogOptions) error {
	if t := c.Int("tail"); t >= 0 && c.IsSet("tail") {
		opts.TailLines = &t
	}
	rc, err := open(opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(c.App.Writer, rc)
	if c.Context.Err() != nil {
		return nil
	}
	return err
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in a container",
		ArgsUsage: "POD -- COMMAND [ARG...]",
		Description: `The command's exit code becomes cloudbox's.

   cloudbox exec web -- cat /etc/hostname
   cloudbox exec -it web -- sh                 # an interactive shell on a real terminal`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"},
			&cli.StringFlag{Name: "container", Aliases: []string{"c"}, Usage: "the container (needed when the pod has several)"},
			&cli.BoolFlag{Name: "stdin", Aliases: []string{"i"}, Usage: "pass standard input to the command"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a terminal"},
		},
		UseShortOptionHandling: true,
		Action:                 runExec,
	}
}

func runExec(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) < 2 {
		return fmt.Errorf("usage: cloudbox exec POD -- COMMAND [ARG...]")
	}
	pod, command := args[0], args[1:]
	if command[0] == "--" {
		command = command[1:]
	}
	if len(command) == 0 {
		return fmt.Errorf("name the command to run after --")
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	opts := client.ExecOptions{Container: c.String("container"), Command: command, TTY: c.Bool("tty"),
		Stdout: c.App.Writer, Stderr: c.App.ErrWriter}
	if c.Bool("stdin") {
		opts.Stdin = c.App.Reader
	}
	if opts.TTY {
		restore, err := rawTerminal(c, &opts)
		if err != nil {
			return errors.New("-t needs standard input to be a terminal")
		}
		defer restore()
	}
	code, err := cl.Exec(c.Context, c.String("namespace"), pod, opts)
	if err != nil {
		return err
	}
	if code != 0 {
		return cli.Exit("", code)
	}
	return nil
}

// rawTerminal puts standard input in raw mode for an exec with a TTY and sends the
// terminal's size (now and on every SIGWINCH) through opts.Resize. It fails when
// standard input is not a terminal; restore undoes it all.
func rawTerminal(c *cli.Context, opts *client.ExecOptions) (restore func(), err error) {
	f, ok := c.App.Reader.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errors.New("standard input is not a terminal")
	}
	state, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	resize := make(chan [2]uint16, 1)
	if w, h, err := term.GetSize(int(f.Fd())); err == nil {
		resize <- [2]uint16{uint16(w), uint16(h)}
	}
	opts.Resize = resize
	stopWinch := watchResize(int(f.Fd()), resize)
	return func() {
		stopWinch()
		_ = term.Restore(int(f.Fd()), state)
	}, nil
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run an image in a new pod",
		ArgsUsage: "NAME --image IMAGE [-- COMMAND [ARG...]]",
		Description: `   cloudbox run web --image nginx:1.25 --port 80
   cloudbox run once --image busybox:1.36 --restart Never -- echo hello
   cloudbox run box --image busybox:1.36 --dry-run -o yaml     # print the manifest`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"},
			&cli.StringFlag{Name: "image", Usage: "the image to run", Required: true},
			&cli.StringFlag{Name: "restart", Value: api.RestartAlways, Usage: "restart policy: Always, OnFailure or Never"},
			&cli.IntFlag{Name: "port", Usage: "the port the container exposes"},
			&cli.StringSliceFlag{Name: "env", Usage: "an environment variable, KEY=VALUE (repeatable)"},
			&cli.StringSliceFlag{Name: "labels", Aliases: []string{"l"}, Usage: "a label, KEY=VALUE (repeatable); default run=NAME"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the pod instead of creating it"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "yaml", Usage: "with --dry-run: json or yaml"},
		},
		Action: runRun,
	}
}

func runRun(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) < 1 {
		return fmt.Errorf("usage: cloudbox run NAME --image IMAGE [-- COMMAND...]")
	}
	name, rest := args[0], args[1:]
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	pod := client.NewObject[*api.Pod]()
	pod.Name, pod.Namespace = name, c.String("namespace")
	pod.Labels = map[string]string{"run": name}
	if ls := c.StringSlice("labels"); len(ls) > 0 {
		labels, err := parseLabels(ls)
		if err != nil {
			return err
		}
		pod.Labels = labels
	}
	ctr := api.Container{Name: name, Image: c.String("image"), Command: rest}
	for _, e := range c.StringSlice("env") {
		key, val, ok := strings.Cut(e, "=")
		if !ok || key == "" {
			return fmt.Errorf("--env %q: want KEY=VALUE", e)
		}
		ctr.Env = append(ctr.Env, api.EnvVar{Name: key, Value: val})
	}
	if p := c.Int("port"); p != 0 {
		ctr.Ports = []api.ContainerPort{{ContainerPort: int32(p)}}
	}
	pod.Spec.Containers = []api.Container{ctr}
	pod.Spec.RestartPolicy = c.String("restart")
	if c.Bool("dry-run") {
		api.Default(pod)
		if err := api.Validate(pod); err != nil {
			return err
		}
		return encode(c.App.Writer, pod, c.String("output"))
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	if _, err := cl.Create(c.Context, pod); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "pod/%s created\n", name)
	return nil
}
