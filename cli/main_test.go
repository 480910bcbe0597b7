package cli

import (
	"fmt"
	"os"
	"testing"

	"github.com/cloudbox/cloudbox/runtime/container"
)

// TestMain lets this test binary stand in for the cloudbox binary: the runtime
// re-executes it as a container's init, and the end-to-end tests start it as a
// server process (CLOUDBOX_TEST_MAIN=1) that they can kill -9.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		container.Init()
	}
	if os.Getenv("CLOUDBOX_TEST_MAIN") == "1" {
		app := App()
		if err := app.Run(ReorderArgs(app, os.Args)); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
