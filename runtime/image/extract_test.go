package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tentry is a tar entry for tests; typ 0 means a regular file.
type tentry struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	uid  int
	gid  int
	pax  map[string]string
}

var testMtime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func mkTar(t testing.TB, entries ...tentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{
			Name: e.name, Typeflag: typ, Linkname: e.link, Mode: mode, Uid: e.uid, Gid: e.gid,
			ModTime: testMtime, PAXRecords: e.pax, Format: tar.FormatPAX,
		}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is a temp dir holding the extraction root and, beside it, what an escaping entry
// would hit: an empty sentinel dir and a file with known content.
type sandbox struct {
	top, root, sentinel, secret string
}

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	top := t.TempDir()
	s := sandbox{top: top, root: filepath.Join(top, "root"), sentinel: filepath.Join(top, "sentinel"), secret: filepath.Join(top, "outside", "secret")}
	for _, d := range []string{s.root, s.sentinel, filepath.Dir(s.secret)} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(s.secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkUntouched fails when anything outside the root changed.
func (s sandbox) checkUntouched(t testing.TB) {
	t.Helper()
	names := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		sort.Strings(out)
		return out
	}
	if got := names(s.top); strings.Join(got, ",") != "outside,root,sentinel" {
		t.Fatalf("entries beside the root: %v", got)
	}
	if got := names(s.sentinel); len(got) != 0 {
		t.Fatalf("sentinel dir not empty: %v", got)
	}
	if got := names(filepath.Dir(s.secret)); strings.Join(got, ",") != "secret" {
		t.Fatalf("outside dir: %v", got)
	}
	var st unix.Stat_t
	if err := unix.Lstat(s.secret, &st); err != nil {
		t.Fatal(err)
	}
	if st.Nlink != 1 || st.Mode&0o7777 != 0o600 || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != uint32(os.Getuid()) {
		t.Fatalf("secret file changed: nlink %d mode %o uid %d", st.Nlink, st.Mode, st.Uid)
	}
	if b, err := os.ReadFile(s.secret); err != nil || string(b) != "secret" {
		t.Fatalf("secret file content %q, %v", b, err)
	}
}

func isRoot() bool { return os.Geteuid() == 0 }

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func absent(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists (%v)", p, err)
	}
}

func isWhiteout(t *testing.T, p string) {
	t.Helper()
	st := lstat(t, p)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("%s is not an overlay whiteout: mode %o rdev %d", p, st.Mode, st.Rdev)
	}
}

func isOpaque(t *testing.T, p string) {
	t.Helper()
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, overlayOpaqueXattr, buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Fatalf("%s is not opaque: %q %v", p, buf[:n], err)
	}
}

func TestApplyLayer(t *testing.T) {
	const (
		dir     = tar.TypeDir
		symlink = tar.TypeSymlink
		link    = tar.TypeLink
	)
	type tc struct {
		name string
		// layers are applied in order onto the same root, the last one with opts.
		layers   [][]tentry
		overlay  bool
		needRoot bool
		// wantErr is a substring of the error of the last layer; "" means success.
		wantErr string
		check   func(t *testing.T, root string)
	}
	tests := []tc{
		{
			name: "files dirs symlinks hard links",
			layers: [][]tentry{{
				{name: "etc/", typ: dir, mode: 0o750},
				{name: "etc/passwd", body: "root:x:0:0", mode: 0o640},
				{name: "bin/busybox", body: "ELF", mode: 0o4755},
				{name: "bin/sh", typ: symlink, link: "busybox"},
				{name: "bin/ls", typ: link, link: "bin/busybox"},
				{name: "./bin/", typ: dir, mode: 0o711},
			}},
			check: func(t *testing.T, root string) {
				if got := readFile(t, root+"/etc/passwd"); got != "root:x:0:0" {
					t.Errorf("passwd = %q", got)
				}
				if st := lstat(t, root+"/etc"); st.Mode&0o7777 != 0o750 {
					t.Errorf("etc mode %o", st.Mode&0o7777)
				}
				if st := lstat(t, root+"/bin"); st.Mode&0o7777 != 0o711 || st.Mtim.Sec != testMtime.Unix() {
					t.Errorf("bin mode %o mtime %d", st.Mode&0o7777, st.Mtim.Sec)
				}
				st := lstat(t, root+"/bin/busybox")
				if st.Mode&0o7777 != 0o4755 || st.Nlink != 2 || st.Mtim.Sec != testMtime.Unix() {
					t.Errorf("busybox mode %o nlink %d mtime %d", st.Mode&0o7777, st.Nlink, st.Mtim.Sec)
				}
				if l, err := os.Readlink(root + "/bin/sh"); err != nil || l != "busybox" {
					t.Errorf("sh -> %q %v", l, err)
				}
				if st := lstat(t, root+"/bin/sh"); st.Mtim.Sec != testMtime.Unix() {
					t.Errorf("symlink mtime %d", st.Mtim.Sec)
				}
			},
		},
		{
			name:     "owners as root",
			needRoot: true,
			layers: [][]tentry{{
				{name: "home/u/", typ: dir, uid: 1000, gid: 1000},
				{name: "home/u/f", body: "x", uid: 1000, gid: 100, mode: 0o2755},
				{name: "home/u/l", typ: symlink, link: "f", uid: 1001, gid: 1001},
			}},
			check: func(t *testing.T, root string) {
				if st := lstat(t, root+"/home/u"); st.Uid != 1000 || st.Gid != 1000 {
					t.Errorf("dir owner %d:%d", st.Uid, st.Gid)
				}
				if st := lstat(t, root+"/home/u/f"); st.Uid != 1000 || st.Gid != 100 || st.Mode&0o7777 != 0o2755 {
					t.Errorf("file owner %d:%d mode %o (setgid must survive chown)", st.Uid, st.Gid, st.Mode&0o7777)
				}
				if st := lstat(t, root+"/home/u/l"); st.Uid != 1001 {
					t.Errorf("symlink owner %d", st.Uid)
				}
			},
		},
		{
			name:   "absolute names are relative to the root",
			layers: [][]tentry{{{name: "/etc/hosts", body: "h"}, {name: "//x/../y", body: "y"}}},
			check: func(t *testing.T, root string) {
				if readFile(t, root+"/etc/hosts") != "h" || readFile(t, root+"/y") != "y" {
					t.Error("content")
				}
			},
		},
		{name: "dotdot escape", layers: [][]tentry{{{name: "../sentinel/pwned", body: "x"}}}, wantErr: "escapes the layer root"},
		{name: "dotdot escape in the middle", layers: [][]tentry{{{name: "a/../../sentinel/pwned", body: "x"}}}, wantErr: "escapes the layer root"},
		{name: "dotdot after absolute", layers: [][]tentry{{{name: "/../sentinel/pwned", body: "x"}}}, wantErr: "escapes the layer root"},
		{
			name:    "write through relative symlink out of the root",
			layers:  [][]tentry{{{name: "esc", typ: symlink, link: "../sentinel"}, {name: "esc/pwned", body: "x"}}},
			wantErr: "esc/pwned",
		},
		{
			name:    "write through absolute symlink",
			layers:  [][]tentry{{{name: "esc", typ: symlink, link: "SENTINEL"}, {name: "esc/pwned", body: "x"}}},
			wantErr: "esc/pwned",
		},
		{
			name:    "directory through symlink chain out of the root",
			layers:  [][]tentry{{{name: "a", typ: symlink, link: "b/.."}, {name: "b", typ: symlink, link: ".."}, {name: "a/sentinel/d/", typ: dir}}},
			wantErr: "a/sentinel/d",
		},
		{
			name:    "symlink planted by a lower layer",
			layers:  [][]tentry{{{name: "esc", typ: symlink, link: "../sentinel"}}, {{name: "esc/pwned", body: "x"}}},
			wantErr: "esc/pwned",
		},
		{
			name:   "symlink inside the root is followed",
			layers: [][]tentry{{{name: "real/", typ: dir}, {name: "alias", typ: symlink, link: "real"}, {name: "alias/f", body: "in"}}},
			check: func(t *testing.T, root string) {
				if readFile(t, root+"/real/f") != "in" {
					t.Error("real/f")
				}
			},
		},
		{
			name:   "file replaces a symlink instead of writing through it",
			layers: [][]tentry{{{name: "f", typ: symlink, link: "../outside/secret"}, {name: "f", body: "mine"}}},
			check: func(t *testing.T, root string) {
				if st := lstat(t, root+"/f"); st.Mode&unix.S_IFMT != unix.S_IFREG || readFile(t, root+"/f") != "mine" {
					t.Error("f not replaced")
				}
			},
		},
		{
			name:   "file replaces a hard link instead of writing through it",
			layers: [][]tentry{{{name: "a", body: "a"}, {name: "b", typ: link, link: "a"}, {name: "b", body: "b"}}},
			check: func(t *testing.T, root string) {
				if readFile(t, root+"/a") != "a" || readFile(t, root+"/b") != "b" {
					t.Error("hard link written through")
				}
			},
		},
		{name: "hard link out of the root", layers: [][]tentry{{{name: "hl", typ: link, link: "../outside/secret"}}}, wantErr: "escapes the layer root"},
		{
			name:    "hard link through a symlinked dir",
			layers:  [][]tentry{{{name: "d", typ: symlink, link: "../outside"}, {name: "hl", typ: link, link: "d/secret"}}},
			wantErr: `"hl"`,
		},
		{
			name:    "hard link to an absolute target stays inside",
			layers:  [][]tentry{{{name: "hl", typ: link, link: "OUTSIDE/secret"}}},
			wantErr: `"hl"`,
		},
		{name: "char device", layers: [][]tentry{{{name: "dev/null", typ: tar.TypeChar}}}, wantErr: "device nodes"},
		{name: "block device", layers: [][]tentry{{{name: "dev/sda", typ: tar.TypeBlock}}}, wantErr: "device nodes"},
		{name: "fifo", layers: [][]tentry{{{name: "run/fifo", typ: tar.TypeFifo}}}, wantErr: "device nodes"},
		{name: "root as symlink", layers: [][]tentry{{{name: "./", typ: symlink, link: "/"}}}, wantErr: "layer root"},
		{
			name: "whiteouts delete from lower layers",
			layers: [][]tentry{
				{{name: "etc/gone", body: "x"}, {name: "etc/kept", body: "k"}, {name: "data/a", body: "a"}, {name: "data/sub/b", body: "b"}, {name: "olddir/x/y", body: "y"}},
				{{name: "data/sub/new", body: "n"}, {name: "etc/.wh.gone"}, {name: "data/.wh..wh..opq"}, {name: "data/c", body: "c"}, {name: ".wh.olddir"}},
			},
			check: func(t *testing.T, root string) {
				absent(t, root+"/etc/gone")
				absent(t, root+"/etc/.wh.gone")
				absent(t, root+"/olddir")
				absent(t, root+"/data/a")
				absent(t, root+"/data/sub/b")
				absent(t, root+"/data/.wh..wh..opq")
				if readFile(t, root+"/etc/kept") != "k" || readFile(t, root+"/data/c") != "c" || readFile(t, root+"/data/sub/new") != "n" {
					t.Error("content of the upper layer lost")
				}
			},
		},
		{
			name:   "whiteout of a dir replaced in the same layer",
			layers: [][]tentry{{{name: "d/old", body: "o"}}, {{name: "d/new", body: "n"}, {name: ".wh.d"}}},
			check: func(t *testing.T, root string) {
				absent(t, root+"/d/old")
				if readFile(t, root+"/d/new") != "n" {
					t.Error("d/new")
				}
			},
		},
		{
			name:     "overlay whiteouts",
			overlay:  true,
			needRoot: true,
			layers:   [][]tentry{{{name: "etc/", typ: dir}, {name: "etc/.wh.gone"}, {name: "data/.wh..wh..opq"}, {name: "data/c", body: "c"}, {name: ".wh.d"}, {name: "d/", typ: dir}, {name: ".wh..wh.plnk"}}},
			check: func(t *testing.T, root string) {
				isWhiteout(t, root+"/etc/gone")
				isOpaque(t, root+"/data")
				// A directory replacing a whiteout must hide the lower one's content.
				isOpaque(t, root+"/d")
				absent(t, root+"/.wh..wh.plnk")
				if readFile(t, root+"/data/c") != "c" {
					t.Error("data/c")
				}
			},
		},
		{
			name:     "overlay whiteout through symlink out of the root",
			overlay:  true,
			needRoot: true,
			layers:   [][]tentry{{{name: "esc", typ: symlink, link: "../outside"}, {name: "esc/.wh.secret"}}},
			wantErr:  "esc/.wh.secret",
		},
		{
			name:    "whiteout through symlink out of the root",
			layers:  [][]tentry{{{name: "esc", typ: symlink, link: "../outside"}, {name: "esc/.wh.secret"}}},
			wantErr: "esc/.wh.secret",
		},
		{
			name:    "opaque through symlink out of the root",
			layers:  [][]tentry{{{name: "esc", typ: symlink, link: "../outside"}}, {{name: "esc/.wh..wh..opq"}}},
			wantErr: "esc/.wh..wh..opq",
		},
		{name: "whiteout of the parent", layers: [][]tentry{{{name: "a/.wh.."}}}, wantErr: "invalid whiteout"},
		{name: "whiteout as a directory", layers: [][]tentry{{{name: "a/.wh.b/c", body: "x"}}}, wantErr: "whiteout name"},
		{
			name: "only harmless xattrs are applied",
			layers: [][]tentry{{{name: "f", body: "x", pax: map[string]string{
				"SCHILY.xattr.user.note":              "hi",
				"SCHILY.xattr.trusted.overlay.opaque": "y",
			}}}},
			check: func(t *testing.T, root string) {
				buf := make([]byte, 8)
				if _, err := unix.Lgetxattr(root+"/f", overlayOpaqueXattr, buf); err == nil {
					t.Error("trusted.overlay.opaque was applied from the tar")
				}
				// user xattrs need filesystem support (tmpfs has it since 6.6); only check
				// when the filesystem takes them at all.
				if err := unix.Lsetxattr(root+"/f", "user.probe", []byte("1"), 0); err != nil {
					return
				}
				if n, err := unix.Lgetxattr(root+"/f", "user.note", buf); err == nil && string(buf[:n]) != "hi" {
					t.Errorf("user.note = %q", buf[:n])
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.needRoot || tt.overlay) && !isRoot() {
				t.Skip("needs root: chown, mknod and trusted xattrs")
			}
			sb := newSandbox(t)
			var err error
			for i, layer := range tt.layers {
				for j := range layer {
					layer[j].link = strings.NewReplacer("SENTINEL", sb.sentinel, "OUTSIDE", filepath.Dir(sb.secret)).Replace(layer[j].link)
				}
				_, err = ApplyLayer(sb.root, bytes.NewReader(mkTar(t, layer...)), ApplyOptions{OverlayWhiteouts: tt.overlay})
				if i < len(tt.layers)-1 && err != nil {
					t.Fatalf("lower layer %d: %v", i, err)
				}
			}
			sb.checkUntouched(t)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, sb.root)
			}
		})
	}
}

func TestApplyLayerUnsafeEntryError(t *testing.T) {
	sb := newSandbox(t)
	_, err := ApplyLayer(sb.root, bytes.NewReader(mkTar(t, tentry{name: "../x", body: "x"})), ApplyOptions{})
	var unsafe *UnsafeEntryError
	if !errors.As(err, &unsafe) || unsafe.Name != "../x" {
		t.Fatalf("error = %v, want an UnsafeEntryError for ../x", err)
	}
}

func TestApplyLayerTruncated(t *testing.T) {
	sb := newSandbox(t)
	b := mkTar(t, tentry{name: "big", body: strings.Repeat("x", 10000)})
	_, err := ApplyLayer(sb.root, bytes.NewReader(b[:3000]), ApplyOptions{})
	if err == nil {
		t.Fatal("truncated layer applied without error")
	}
}

// benchLayer is a layer shaped like a distribution base image: many small files in a few
// hundred directories, some symlinks.
func benchLayer(b testing.TB) []byte {
	var entries []tentry
	body := strings.Repeat("cloudbox", 512) // 4 KiB
	for d := 0; d < 200; d++ {
		dir := fmt.Sprintf("usr/lib/pkg%03d/", d)
		entries = append(entries, tentry{name: dir, typ: tar.TypeDir})
		for f := 0; f < 20; f++ {
			entries = append(entries, tentry{name: fmt.Sprintf("%sfile%02d.so", dir, f), body: body})
		}
		entries = append(entries, tentry{name: dir + "current", typ: tar.TypeSymlink, link: "file00.so"})
	}
	return mkTar(b, entries...)
}

func BenchmarkApplyLayer(b *testing.B) {
	layer := benchLayer(b)
	top := b.TempDir()
	b.SetBytes(int64(len(layer)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(top, fmt.Sprint(i))
		if _, err := ApplyLayer(dir, bytes.NewReader(layer), ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
