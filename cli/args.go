package cli

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// ReorderArgs moves a command's flags in front of its positional arguments, so that
// `cloudbox get pods -o wide` works as it does in kubectl: urfave/cli stops reading
// flags at the first positional argument. Arguments after "--" are left alone.
func ReorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// urfave/cli completes only when its flag comes last, where the shell put it.
	if last := args[len(args)-1]; last == completionFlag {
		return append(ReorderArgs(app, args[:len(args)-1]), last)
	}
	out := []string{args[0]}
	cmds, flags := app.Commands, app.Flags
	i := 1
	// Global flags and the command path come first, as they are.
	for i < len(args) {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			out = append(out, a)
			if takesValue(flags, a) && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
			i++
			continue
		}
		cmd := findCommand(cmds, a)
		if cmd == nil {
			break
		}
		out = append(out, a)
		cmds, flags = cmd.Subcommands, cmd.Flags
		i++
	}
	var positional []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			out = append(out, a)
			if takesValue(flags, a) && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
			continue
		}
		positional = append(positional, a)
	}
	return append(out, positional...)
}

// completionFlag is what the completion scripts append to ask for candidates.
const completionFlag = "--generate-bash-completion"

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

// takesValue reports whether arg ("-o", "--output") names a flag that reads the next
// argument as its value: any flag but a boolean, and not written as --flag=value.
func takesValue(flags []cli.Flag, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
