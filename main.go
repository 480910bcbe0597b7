// Command cloudbox is a private cloud in one binary: a Kubernetes-style orchestrator
// for containers and an OpenStack-style IaaS for virtual machines.
package main

import (
	"fmt"
	"os"

	"github.com/cloudbox/cloudbox/cli"
)

func main() {
	app := cli.App()
	if err := app.Run(cli.ReorderArgs(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
