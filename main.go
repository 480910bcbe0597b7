// Command cloudbox is a private cloud in one binary: a Kubernetes-style orchestrator
// for containers and an OpenStack-style IaaS for virtual machines.
package main

import (
	"fmt"
	"os"

	"github.com/cloudbox/cloudbox/cli"
	"github.com/cloudbox/cloudbox/runtime/container"
)

func main() {
	// libcontainer re-executes this binary as "cloudbox init" to become a container's
	// init; Init does not return in that case.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		container.Init()
	}
	app := cli.App()
	if err := app.Run(cli.ReorderArgs(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
