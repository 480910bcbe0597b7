package hypervisor

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// at returns a zeroed buffer of size n with b written at off.
func at(n, off int, b []byte) []byte {
	buf := make([]byte, n)
	copy(buf[off:], b)
	return buf
}

func elfBytes(t *testing.T) []byte {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := readHeader(exe, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDetectDiskFormat(t *testing.T) {
	gpt := at(1024, 512, []byte("EFI PART"))
	for _, tc := range []struct {
		name string
		data []byte
		want Format // empty: refused
	}{
		{"qcow2", append([]byte("QFI\xfb\x00\x00\x00\x03"), make([]byte, 504)...), FormatQCOW2},
		{"mbr", at(512, 510, []byte{0x55, 0xaa}), FormatRaw},
		{"gpt", gpt, FormatRaw},
		{"iso", at(0x9000, 0x8001, []byte("CD001")), FormatRaw},
		{"text", bytes.Repeat([]byte("hello, this is not a disk\n"), 1000), ""},
		{"elf", elfBytes(t), ""},
		{"empty", nil, ""},
		{"short qcow2 magic", []byte("QFI"), ""},
		{"zeros", make([]byte, 1<<20), ""},
		{"vmdk", append([]byte("KDMV"), make([]byte, 600)...), ""},
		{"vdi", at(1024, 0x40, []byte("\x7f\x10\xda\xbe")), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, "disk.img", tc.data) // the name never matters
			got, err := DetectDiskFormat(p)
			if tc.want == "" {
				if !errors.Is(err, ErrNotDisk) {
					t.Fatalf("got %q, %v; want ErrNotDisk", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := DetectDiskFormat(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestCheckKernel(t *testing.T) {
	if err := CheckKernel(writeTemp(t, "vmlinuz", at(4096, 0x202, []byte("HdrS")))); err != nil {
		t.Errorf("bzImage header refused: %v", err)
	}
	for name, data := range map[string][]byte{
		"elf":   elfBytes(t),
		"text":  []byte("#!/bin/sh\necho hi\n"),
		"short": []byte("MZ"),
	} {
		if err := CheckKernel(writeTemp(t, name, data)); !errors.Is(err, ErrNotKernel) {
			t.Errorf("%s: got %v, want ErrNotKernel", name, err)
		}
	}
}

func TestCheckInitrd(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte("070701"))
	w.Close()
	for name, data := range map[string][]byte{
		"gzip": gz.Bytes(),
		"xz":   []byte("\xfd7zXZ\x00\x00"),
		"zstd": {0x28, 0xb5, 0x2f, 0xfd, 0},
		"cpio": []byte("07070100000001"),
	} {
		if err := CheckInitrd(writeTemp(t, name, data)); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
	for name, data := range map[string][]byte{
		"elf":   elfBytes(t),
		"text":  []byte("not an initrd"),
		"empty": nil,
	} {
		if err := CheckInitrd(writeTemp(t, name, data)); !errors.Is(err, ErrNotInitrd) {
			t.Errorf("%s: got %v, want ErrNotInitrd", name, err)
		}
	}
}

func FuzzDiskFormat(f *testing.F) {
	f.Add([]byte("QFI\xfb"))
	f.Add(at(512, 510, []byte{0x55, 0xaa}))
	f.Add(at(0x8006, 0x8001, []byte("CD001")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, hdr []byte) {
		got, ok := diskFormat(hdr)
		if ok != (got != "") {
			t.Fatalf("diskFormat = %q, %v", got, ok)
		}
		if bytes.HasPrefix(hdr, []byte("QFI\xfb")) && got != FormatQCOW2 {
			t.Fatalf("qcow2 magic read as %q", got)
		}
	})
}
