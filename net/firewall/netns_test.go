package firewall

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/internal/testenv"
)

// run runs a command inside ns and returns its stdout.
func run(t *testing.T, ns *testenv.NetNS, stdin string, name string, args ...string) string {
	t.Helper()
	var out []byte
	ns.MustDo(t, func() error {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var err error
		out, err = cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return fmt.Errorf("%s %v: %v: %s", name, args, err, ee.Stderr)
			}
			return fmt.Errorf("%s %v: %v", name, args, err)
		}
		return nil
	})
	return string(out)
}

// requireIptables skips when the iptables tools are missing.
func requireIptables(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	for _, bin := range []string{"iptables", "iptables-save", "iptables-restore"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
}
