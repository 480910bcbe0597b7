package vmdriver

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSeekTail(t *testing.T) {
	long := strings.Repeat("x", 70<<10) // longer than one read chunk
	for _, tc := range []struct {
		content string
		n       int
		want    string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 0, ""},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"", 3, ""},
		{long + "\nlast\n", 1, "last\n"},
		{"first\n" + long + "\nlast\n", 2, long + "\nlast\n"},
	} {
		path := filepath.Join(t.TempDir(), "log")
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := seekTail(f, tc.n); err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(f)
		f.Close()
		if string(got) != tc.want {
			t.Errorf("tail %d of %.20q: got %.30q, want %.30q", tc.n, tc.content, got, tc.want)
		}
	}
}

func TestMACAndDirNamesAreStablePerInstance(t *testing.T) {
	a, b := "6f1c2a9e-1b2c-4d5e-8f90-123456789abc", "0d1c2a9e-1b2c-4d5e-8f90-123456789abc"
	if macFor(a) != macFor(a) || macFor(a) == macFor(b) || !strings.HasPrefix(macFor(a), "52:54:00:") || len(macFor(a)) != 17 {
		t.Errorf("MACs: %s %s", macFor(a), macFor(b))
	}
	if got := shortID(a); got != "6f1c2a9e1b2c4d5e" {
		t.Errorf("shortID = %q", got)
	}
}
