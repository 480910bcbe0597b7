// Command kubectl is the real kubectl, built from the k8s.io modules this module pins,
// the way k8s.io/kubernetes/cmd/kubectl builds it. The compatibility tests run it
// against a cloudbox server; CI has no kubectl of its own, and building it here keeps
// the k8s.io code out of the cloudbox binary.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"

	// The client auth plugins (exec, OIDC), so kubeconfigs that name them work.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

func main() {
	os.Exit(cli.Run(cmd.NewDefaultKubectlCommand()))
}
