package image

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzPieces are the path components fuzzTar builds names and link targets from: the
// tricks a hostile layer would use, so that the fuzzer combines them instead of having to
// discover "..".
var fuzzPieces = []string{
	"a", "b", "c", "..", ".", "", "/", ".wh.a", ".wh.b", ".wh..wh..opq", ".wh..wh.plnk", ".wh.",
	"SENTINEL", "OUTSIDE", "../sentinel", "../outside", "../outside/secret", "../../", "a/..", "//",
}

var fuzzTypes = []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeFifo, tar.TypeBlock, 'x'}

// fuzzTar turns fuzzer bytes into a layer. With a leading 0 the rest is taken as a raw tar
// (so the tar reader's own corner cases get fuzzed too); otherwise each group of bytes
// encodes an entry: type, name pieces, link pieces, mode and body size.
func fuzzTar(t *testing.T, data []byte, sb sandbox) []byte {
	if len(data) > 0 && data[0] == 0 {
		return data[1:]
	}
	pos := 0
	next := func() int {
		if pos >= len(data) {
			return 0
		}
		pos++
		return int(data[pos-1])
	}
	path := func() string {
		n := next()%4 + 1
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fuzzPieces[next()%len(fuzzPieces)]
		}
		p := strings.Join(parts, "/")
		return strings.NewReplacer("SENTINEL", sb.sentinel, "OUTSIDE", filepath.Dir(sb.secret)).Replace(p)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for pos < len(data) {
		typ := fuzzTypes[next()%len(fuzzTypes)]
		hdr := &tar.Header{Typeflag: typ, Name: path(), Mode: int64(next()<<4|next()) & 0o7777, Format: tar.FormatPAX}
		if typ == tar.TypeSymlink || typ == tar.TypeLink {
			hdr.Linkname = path()
		}
		var body []byte
		if typ == tar.TypeReg {
			body = bytes.Repeat([]byte{'x'}, next())
			hdr.Size = int64(len(body))
		}
		if next()%5 == 0 {
			hdr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.a": "b"}
		}
		if hdr.Name == "" || tw.WriteHeader(hdr) != nil {
			continue
		}
		_, _ = tw.Write(body)
	}
	_ = tw.Close()
	return buf.Bytes()
}

// seed joins entries encoded for fuzzTar into one fuzz input.
func seed(entries ...[]byte) []byte {
	return bytes.Join(entries, nil)
}

func FuzzApplyLayer(f *testing.F) {
	// Indexes into fuzzTypes and fuzzPieces.
	const (
		reg, dir, sym, hard, chr = 0, 1, 2, 3, 4
		pA, pB, pC, pUp          = 0, 1, 2, 3
		pWhA, pOpq               = 7, 9
		pSentinel, pOutside      = 12, 13
		pUpSentinel, pUpOutside  = 14, 15
		pUpSecret, pUpUp         = 16, 17
	)
	// entry(type, name pieces..., link pieces...) in fuzzTar's encoding: the count byte is
	// pieces-1, then mode (2 bytes), body size, pax flag.
	entry := func(typ byte, name []byte, link []byte) []byte {
		e := []byte{typ, byte(len(name) - 1)}
		e = append(e, name...)
		e = append(e, 0x1e, 0x0d) // mode 0755
		if typ == sym || typ == hard {
			e = append(e, byte(len(link)-1))
			e = append(e, link...)
		}
		if typ == reg {
			e = append(e, 3)
		}
		return append(e, 1)
	}
	p := func(ps ...byte) []byte { return ps }
	f.Add(seed(entry(reg, p(pUp, pSentinel), nil)))
	f.Add(seed(entry(sym, p(pA), p(pUpSentinel)), entry(reg, p(pA, pB), nil)))
	f.Add(seed(entry(sym, p(pA), p(pSentinel)), entry(dir, p(pA, pB), nil), entry(reg, p(pA, pB, pC), nil)))
	f.Add(seed(entry(hard, p(pA), p(pUpSecret)), entry(reg, p(pA), nil)))
	f.Add(seed(entry(sym, p(pA), p(pUpOutside)), entry(hard, p(pB), p(pA, pC))))
	f.Add(seed(entry(sym, p(pA), p(pOutside)), entry(reg, p(pA, pWhA), nil), entry(reg, p(pA, pOpq), nil)))
	f.Add(seed(entry(sym, p(pA), p(pB, pUp)), entry(sym, p(pB), p(pUpUp)), entry(reg, p(pA, pC), nil)))
	f.Add(seed(entry(dir, p(pA), nil), entry(reg, p(pA, pWhA), nil), entry(reg, p(pA, pOpq), nil), entry(chr, p(pB), nil)))
	f.Add(append([]byte{0}, mkTar(f, tentry{name: "../../x", body: "x"}, tentry{name: "l", typ: tar.TypeSymlink, link: "/"}, tentry{name: "l/x", body: "y"})...))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, overlay := range []bool{false, true} {
			if overlay && !isRoot() {
				continue
			}
			sb := newSandbox(t)
			layer := fuzzTar(t, data, sb)
			// Two passes over the same root: the second meets what the first planted.
			for range 2 {
				_, _ = ApplyLayer(sb.root, bytes.NewReader(layer), ApplyOptions{OverlayWhiteouts: overlay})
				sb.checkUntouched(t)
			}
			// Modes like 0000 on directories must not break t.TempDir's cleanup as non-root.
			_ = filepath.WalkDir(sb.root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					_ = os.Chmod(p, 0o755)
				}
				return nil
			})
		}
	})
}
