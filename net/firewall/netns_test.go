package firewall

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/internal/testenv"
)

// The namespace helpers live in internal/testenv, shared with the other network
// packages' tests; these names keep the tests short.
type testNS = testenv.NetNS

func requireRoot(t *testing.T) { testenv.RequireRoot(t) }

func newNS(t *testing.T) *testNS { return testenv.NewNetNS(t) }

// uniqueName returns prefix followed by random hex, at most 15 bytes (an interface
// name's limit).
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	name := testenv.Unique(prefix)
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

// inNetNS runs fn on an OS thread that has entered ns.
func inNetNS(t *testing.T, ns *testNS, fn func() error) error {
	t.Helper()
	return ns.Do(fn)
}

// mustInNetNS is inNetNS failing the test on error.
func mustInNetNS(t *testing.T, ns *testNS, fn func() error) {
	t.Helper()
	if err := inNetNS(t, ns, fn); err != nil {
		t.Fatal(err)
	}
}

// run runs a command inside ns and returns its stdout.
func run(t *testing.T, ns *testNS, stdin string, name string, args ...string) string {
	t.Helper()
	var out []byte
	mustInNetNS(t, ns, func() error {
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
	requireRoot(t)
	for _, bin := range []string{"iptables", "iptables-save", "iptables-restore"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
}
