package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/server"
)

func init() {
	h := systemdHost()
	registerCommand(installCommand(h))
	registerCommand(uninstallCommand(h))
}

// unitName is the systemd unit `install` writes.
const unitName = "cloudbox.service"

// serviceHost is where install and uninstall put the unit and how they drive
// systemd; tests give their own.
type serviceHost struct {
	// UnitPath is where the unit file goes.
	UnitPath string
	// Booted reports whether systemd runs this machine.
	Booted func() bool
	// Systemctl runs systemctl with args.
	Systemctl func(args ...string) error
	// Executable is the absolute path ExecStart runs.
	Executable func() (string, error)
}

// systemdHost is the real machine: the unit in /etc/systemd/system, systemd booted
// when /run/systemd/system exists (sd_booted's test).
func systemdHost() *serviceHost {
	return &serviceHost{
		UnitPath: filepath.Join("/etc/systemd/system", unitName),
		Booted: func() bool {
			st, err := os.Stat("/run/systemd/system")
			return err == nil && st.IsDir()
		},
		Systemctl: func(args ...string) error {
			out, err := exec.Command("systemctl", args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
			return nil
		},
		Executable: func() (string, error) {
			p, err := os.Executable()
			if err != nil {
				return "", err
			}
			return filepath.EvalSymlinks(p)
		},
	}
}

func installCommand(h *serviceHost) *cli.Command {
	return &cli.Command{
		Name:  "install",
		Usage: "run this binary's server as a systemd service (cloudbox.service), enabled at boot",
		Description: `Writes /etc/systemd/system/cloudbox.service to run 'cloudbox server' with the
server flags given here (see 'cloudbox server --help'), then enables and starts it.
The unit runs this very file: copy it where it stays (/usr/local/bin/cloudbox) first.
KillMode=process: restarting or stopping the service stops only the server, and
pods and VMs keep running (as k3s does). Without systemd it says so and writes nothing.

   cloudbox install                                   # all-in-one on :6443
   cloudbox install --role worker --join https://10.0.0.1:6443 --token K10...
   cloudbox uninstall                                 # stop, remove the unit and every state`,
		Flags: serverFlags(),
		Action: func(c *cli.Context) error {
			return runInstall(c, h)
		},
	}
}

func uninstallCommand(h *serviceHost) *cli.Command {
	return &cli.Command{
		Name:  "uninstall",
		Usage: "stop and remove cloudbox.service, then everything the server created (server --cleanup)",
		Description: `Disables and stops cloudbox.service, runs 'cloudbox server --cleanup' on its data
dir (pods, VMs, the bridge, iptables chains, cgroups, files) and removes the unit.
The data dir and cgroup parent are read from the unit unless given here. Without
systemd it says so and only cleans up.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Usage: "the server's data dir (default: the unit's, else /var/lib/cloudbox)"},
			&cli.StringFlag{Name: "cgroup-parent", Usage: "the server's cgroup parent (default: the unit's, else /cloudbox)"},
		},
		Action: func(c *cli.Context) error {
			return runUninstall(c, h)
		},
	}
}

func runInstall(c *cli.Context, h *serviceHost) error {
	exe, err := h.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary for the unit's ExecStart: %w", err)
	}
	args := append([]string{exe, "server"}, setFlags(c)...)
	if !h.Booted() {
		return cli.Exit(fmt.Sprintf("systemd is not running on this machine (no /run/systemd/system): nothing was installed.\n"+
			"Run the server under your own init system instead:\n  %s", strings.Join(args, " ")), 1)
	}
	if err := os.MkdirAll(filepath.Dir(h.UnitPath), 0o755); err != nil {
		return err
	}
	// The join token is a secret: it goes in a file only root reads, not in the unit.
	env := ""
	if c.IsSet("token") {
		env = "CLOUDBOX_TOKEN=" + c.String("token") + "\n"
	}
	if err := os.WriteFile(envPath(h), []byte(env), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(h.UnitPath, []byte(unitText(args, envPath(h))), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "wrote %s and %s\n", h.UnitPath, envPath(h))
	for _, a := range [][]string{{"daemon-reload"}, {"enable", "--now", unitName}} {
		if err := h.Systemctl(a...); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.App.Writer, "%s is enabled and started: 'systemctl status cloudbox' shows it, 'journalctl -u cloudbox' its log\n", unitName)
	return nil
}

func runUninstall(c *cli.Context, h *serviceHost) error {
	unit, err := os.ReadFile(h.UnitPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	dataDir := firstNonEmpty(c.String("data-dir"), unitFlag(string(unit), "data-dir"), "/var/lib/cloudbox")
	cgroupParent := firstNonEmpty(c.String("cgroup-parent"), unitFlag(string(unit), "cgroup-parent"), "/cloudbox")
	booted := h.Booted()
	if booted && unit != nil {
		// Stopped first: Restart=always would bring back a server the cleanup stops.
		if err := h.Systemctl("disable", "--now", unitName); err != nil {
			return err
		}
	}
	if !booted {
		fmt.Fprintln(c.App.ErrWriter, "systemd is not running on this machine: there is no service to stop; cleaning up the server's state only")
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	_, statErr := os.Stat(dataDir)
	if err := server.Cleanup(dataDir, cgroupParent, log); err != nil {
		return err
	}
	if statErr == nil {
		fmt.Fprintf(c.App.Writer, "removed the server's state in %s\n", dataDir)
	} else {
		fmt.Fprintf(c.App.Writer, "no server state in %s\n", dataDir)
	}
	if unit == nil {
		return nil
	}
	if err := os.Remove(h.UnitPath); err != nil {
		return err
	}
	if err := os.Remove(envPath(h)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	fmt.Fprintf(c.App.Writer, "removed %s\n", h.UnitPath)
	if booted {
		return h.Systemctl("daemon-reload")
	}
	return nil
}

// envPath is the unit's environment file, beside it (the join token).
func envPath(h *serviceHost) string { return h.UnitPath + ".env" }

// unitText is the systemd unit that runs args (the binary, "server", its flags)
// with the environment file env.
func unitText(args []string, env string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = systemdQuote(a)
	}
	return `[Unit]
Description=cloudbox: a private cloud in one binary (containers, orchestration and VMs)
Documentation=https://github.com/cloudbox/cloudbox
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
EnvironmentFile=-` + env + `
ExecStart=` + strings.Join(quoted, " ") + `
# Only the server is stopped on restart and stop: pods and VMs outlive it, and the
# restarted server adopts them.
KillMode=process
Restart=always
RestartSec=5s
TimeoutStartSec=0
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity

[Install]
WantedBy=multi-user.target
`
}

// systemdQuote writes one ExecStart word: % and $ escaped (systemd expands both),
// and quoted when it holds a space, a quote or a backslash.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// setFlags lists the server flags the command line set, as --name=value words (a
// repeated flag once per value), in the order serverFlags declares them.
func setFlags(c *cli.Context) []string {
	var out []string
	for _, f := range serverFlags() {
		name := f.Names()[0]
		if !c.IsSet(name) || name == "token" { // the token goes in the environment file
			continue
		}
		switch f.(type) {
		case *cli.StringSliceFlag:
			for _, v := range c.StringSlice(name) {
				out = append(out, "--"+name+"="+v)
			}
		case *cli.BoolFlag:
			out = append(out, fmt.Sprintf("--%s=%t", name, c.Bool(name)))
		default:
			out = append(out, "--"+name+"="+fmt.Sprint(c.Value(name)))
		}
	}
	return out
}

// unitFlag reads --name=value from a unit's ExecStart, or "".
func unitFlag(unit, name string) string {
	for _, line := range strings.Split(unit, "\n") {
		if !strings.HasPrefix(line, "ExecStart=") {
			continue
		}
		for _, w := range execWords(strings.TrimPrefix(line, "ExecStart=")) {
			if v, ok := strings.CutPrefix(w, "--"+name+"="); ok {
				return v
			}
		}
	}
	return ""
}

// execWords splits an ExecStart line as systemdQuote wrote it: words apart by
// spaces, double quotes around a word with backslash escapes, %% and $$ for % and $.
func execWords(line string) []string {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quoted && ch == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
		case ch == '"':
			quoted, inWord = !quoted, true
		case !quoted && (ch == ' ' || ch == '\t'):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	unescape := strings.NewReplacer("%%", "%", "$$", "$")
	for i := range words {
		words[i] = unescape.Replace(words[i])
	}
	return words
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
