package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func init() { registerCommand(completionCommand()) }

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `The script completes commands and flags by asking cloudbox itself
(--generate-bash-completion), so it stays right as cloudbox changes.

   source <(cloudbox completion bash)                     # this shell
   cloudbox completion bash > /etc/bash_completion.d/cloudbox
   cloudbox completion zsh > "${fpath[1]}/_cloudbox"      # then: compinit
   cloudbox completion fish > ~/.config/fish/completions/cloudbox.fish`,
		Action: runCompletion,
	}
}

func runCompletion(c *cli.Context) error {
	shell, err := oneName(c)
	if err != nil {
		return err
	}
	return writeCompletion(c.App, shell, c.App.Writer)
}

// writeCompletion writes app's completion script for shell.
func writeCompletion(app *cli.App, shell string, w io.Writer) error {
	switch shell {
	case "bash":
		_, err := io.WriteString(w, bashCompletion)
		return err
	case "zsh":
		_, err := io.WriteString(w, zshCompletion)
		return err
	case "fish":
		s, err := app.ToFishCompletion()
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, s)
		return err
	}
	return fmt.Errorf("completion %q: use bash, zsh or fish", shell)
}

// bashCompletion needs no bash-completion package: it reads COMP_WORDS itself.
const bashCompletion = `# bash completion for cloudbox: source <(cloudbox completion bash)
_cloudbox_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}" opts
  if [[ "$cur" == -* ]]; then
    opts=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _cloudbox_complete cloudbox
`

const zshCompletion = `#compdef cloudbox
# zsh completion for cloudbox: cloudbox completion zsh > "${fpath[1]}/_cloudbox"
_cloudbox() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _cloudbox cloudbox
`

// completeKinds offers the kinds' names as a command's first argument (get, describe,
// delete, wait), and flags or nothing after that, as urfave/cli does by default.
func completeKinds(c *cli.Context) {
	if c.NArg() == 0 && !completingFlag() {
		for _, k := range api.Kinds() {
			fmt.Fprintln(c.App.Writer, k.Resource)
		}
		return
	}
	cli.DefaultCompleteWithFlags(c.Command)(c)
}

// completingFlag reports whether the word being completed is a flag: the completion
// scripts pass it before --generate-bash-completion (urfave/cli reads os.Args too).
func completingFlag() bool {
	n := len(os.Args)
	return n > 2 && strings.HasPrefix(os.Args[n-2], "-")
}
