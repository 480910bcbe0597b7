package cli

import (
	"reflect"
	"strings"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	cases := []struct{ in, want string }{
		{"cloudbox get pods -o wide", "cloudbox get -o wide pods"},
		{"cloudbox get pods web -n kube-system -w", "cloudbox get -n kube-system -w pods web"},
		{"cloudbox --config /x get po -A", "cloudbox --config /x get -A po"},
		{"cloudbox get pods --output=json", "cloudbox get --output=json pods"},
		{"cloudbox apply -f - ", "cloudbox apply -f -"},
		{"cloudbox admin backup /tmp/b.db --data-dir /d", "cloudbox admin backup --data-dir /d /tmp/b.db"},
		{"cloudbox delete pod web -- -weird", "cloudbox delete pod web -- -weird"},
		{"cloudbox version", "cloudbox version"},
	}
	for _, c := range cases {
		got := ReorderArgs(App(), strings.Fields(c.in))
		if want := strings.Fields(c.want); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %q, want %q", c.in, got, want)
		}
	}
}
