// Package cli is cloudbox's command line. It fills config structs from flags and
// talks to the API only through cloud/client.
package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cloudbox/cloudbox/cloud/client"
)

// Set by the linker: -X github.com/cloudbox/cloudbox/cli.Version=... and .Commit=...
var (
	Version = "dev"
	Commit  = "unknown"
)

// VersionInfo is what `cloudbox version` prints and the server reports.
func VersionInfo() map[string]string {
	return map[string]string{"version": Version, "commit": Commit, "goVersion": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH}
}

// App returns the cloudbox command line application.
func App() *cli.App {
	return &cli.App{
		Name:    "cloudbox",
		Usage:   "a private cloud in one binary: containers, orchestration and VMs",
		Version: Version,
		Description: `cloudbox runs a Kubernetes-style orchestrator and an OpenStack-style IaaS
from one binary. Start a cluster with 'cloudbox server', then manage it with
'cloudbox apply', 'get', 'describe' and 'delete', the way kubectl manages Kubernetes.

The CLI finds its cluster through --config, $CLOUDBOX_CONFIG, ~/.cloudbox/config,
or the server's DATA_DIR/admin.config (default /var/lib/cloudbox/admin.config).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "client config file (a kubeconfig written by the server as DATA_DIR/admin.config)", EnvVars: []string{"CLOUDBOX_CONFIG"}},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log level: debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "console", Usage: "log format: console or json"},
		},
		EnableBashCompletion: true,
		Commands: append([]*cli.Command{
			serverCommand(),
			applyCommand(),
			getCommand(),
			describeCommand(),
			deleteCommand(),
			logsCommand(),
			execCommand(),
			runCommand(),
			imageCommand(),
			adminCommand(),
			benchCommand(),
			versionCommand(),
		}, registeredCommands...),
	}
}

// registeredCommands are added by files of their own through registerCommand, so a
// new command does not touch this list.
var registeredCommands []*cli.Command

// registerCommand adds a top-level command; call it from an init function.
func registerCommand(c *cli.Command) { registeredCommands = append(registeredCommands, c) }

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, commit and Go version",
		Action: func(c *cli.Context) error {
			v := VersionInfo()
			fmt.Fprintf(c.App.Writer, "cloudbox %s\ncommit: %s\ngo: %s\nplatform: %s\n", v["version"], v["commit"], v["goVersion"], v["platform"])
			return nil
		},
	}
}

// newLogger builds the zap logger the global flags ask for.
func newLogger(c *cli.Context) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", c.String("log-level"))
	}
	var cfg zap.Config
	switch c.String("log-format") {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
		cfg.Development = false
	default:
		return nil, fmt.Errorf("--log-format %q: use console or json", c.String("log-format"))
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	return cfg.Build()
}

// configPaths lists where the client config is looked for, in order.
func configPaths(c *cli.Context) []string {
	if p := c.String("config"); p != "" {
		return []string{p}
	}
	var paths []string
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, ".cloudbox", "config"))
	}
	return append(paths, "/var/lib/cloudbox/admin.config")
}

// newClient loads the client config and returns an API client.
func newClient(c *cli.Context) (*client.Client, error) {
	paths := configPaths(c)
	for _, p := range paths {
		cfg, err := client.LoadConfigFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		cfg.Warnings = warnings(c).print
		return client.New(cfg)
	}
	return nil, fmt.Errorf("no client config found (looked in %v): start a server with 'cloudbox server' or pass --config DATA_DIR/admin.config", paths)
}
