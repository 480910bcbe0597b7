package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionScripts: each shell's script names cloudbox, and an unknown shell is
// refused.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "complete -o bashdefault -o default -F _cloudbox_complete cloudbox",
		"zsh":  "compdef _cloudbox cloudbox",
		"fish": "complete -c cloudbox -n '__fish_seen_subcommand_from server' -f -l max-pods",
	} {
		var out bytes.Buffer
		if err := writeCompletion(App(), shell, &out); err != nil || !strings.Contains(out.String(), want) {
			t.Errorf("completion %s: %v; want a script with %q, got:\n%.600s", shell, err, want, out.String())
		}
	}
	if err := writeCompletion(App(), "tcsh", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "use bash, zsh or fish") {
		t.Errorf("completion tcsh: %v", err)
	}
}

// TestBashCompletion loads the bash script into a real bash and completes words the
// way the shell does on Tab, with this test binary standing in for cloudbox.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wrapper := "#!/bin/sh\nCLOUDBOX_TEST_MAIN=1 exec " + exe + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "cloudbox"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	var script bytes.Buffer
	if err := writeCompletion(App(), "bash", &script); err != nil {
		t.Fatal(err)
	}
	scriptPath := filepath.Join(dir, "cloudbox.bash")
	if err := os.WriteFile(scriptPath, script.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for words, want := range map[string]string{
		"cloudbox wa":                   "wait",
		"cloudbox get deployme":         "deployments",
		"cloudbox server --max-p":       "--max-pods",
		"cloudbox vm console-l":         "console-log",
		"cloudbox wait --for x --timeo": "--timeout",
	} {
		cmd := exec.Command(bash, "--norc", "-c", `source "$1"; COMP_WORDS=($2); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _cloudbox_complete; echo "${COMPREPLY[*]}"`,
			"bash", scriptPath, words)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("completing %q: %v, got %q, want %q", words, err, out, want)
		}
	}
}
