package bridge

import (
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
