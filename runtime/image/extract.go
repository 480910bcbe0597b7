package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// whiteoutPrefix marks an OCI whiteout entry: ".wh.NAME" deletes NAME of lower layers.
	whiteoutPrefix = ".wh."
	// whiteoutMeta prefixes aufs bookkeeping entries (.wh..wh.plnk, .wh..wh.aufs) that some
	// old layers still carry; they are not content and are skipped.
	whiteoutMeta = ".wh..wh."
	// opaqueWhiteout hides every lower-layer entry of the directory that holds it.
	opaqueWhiteout = ".wh..wh..opq"
	// overlayOpaqueXattr is what overlayfs reads to treat a lowerdir directory as opaque.
	overlayOpaqueXattr = "trusted.overlay.opaque"
	// paxXattr prefixes the PAX records that carry extended attributes.
	paxXattr = "SCHILY.xattr."
)

// ApplyOptions tunes ApplyLayer. The zero value applies a layer onto a flattened rootfs:
// whiteouts delete what lower layers put in dir.
type ApplyOptions struct {
	// OverlayWhiteouts records whiteouts the way overlayfs reads them instead of deleting:
	// a 0/0 character device for ".wh.NAME" and the trusted.overlay.opaque=y xattr for
	// ".wh..wh..opq". Set it when dir holds this one layer alone and will be stacked as an
	// overlayfs lowerdir: the files to hide live in other lowerdirs, so deleting here would
	// do nothing. Needs CAP_MKNOD and CAP_SYS_ADMIN (root).
	OverlayWhiteouts bool
}

// UnsafeEntryError is returned by ApplyLayer for a layer entry it refuses to apply because
// applying it could touch the host outside dir or create a device node. A layer is
// untrusted input: one such entry fails the whole layer rather than being skipped, since a
// partly applied layer is a rootfs nobody asked for.
type UnsafeEntryError struct {
	// Name is the entry's name as written in the tar.
	Name string
	// Reason says what is wrong with it.
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("layer entry %q refused: %s", e.Name, e.Reason)
}

// ApplyLayer applies the uncompressed layer tar read from r onto dir, creating dir if it is
// missing, and returns the number of file content bytes written. It creates regular files,
// directories, symlinks and hard links with the entries' modes and mtimes, and their owners
// when running as root; it handles OCI whiteouts as opts says.
//
// Every path is resolved beneath dir through an os.Root, so symlinks are followed only while
// they stay inside dir: an entry that would be written through a symlink leading out of dir
// (absolute symlinks included) fails, as do entries whose name climbs out with "..", hard
// links to targets outside dir, and device nodes or fifos; absolute entry names are taken
// relative to dir, as tar -x does. An entry that already exists is replaced, never written
// through, so a symlink or hard link planted by an earlier entry cannot redirect a write.
// File contents are bounded by the size in their tar header.
//
// On error dir is left partly written; callers extract into a scratch directory and rename
// it into place only on success.
func ApplyLayer(dir string, r io.Reader, opts ApplyOptions) (int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	x := &extractor{
		root:      root,
		opts:      opts,
		chown:     os.Geteuid() == 0,
		touched:   map[string]bool{".": true},
		whiteouts: map[string]bool{},
		buf:       make([]byte, 256<<10),
	}
	defer x.close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return x.written, fmt.Errorf("read layer tar: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			var unsafe *UnsafeEntryError
			if errors.As(err, &unsafe) {
				return x.written, err
			}
			return x.written, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	return x.written, x.finish()
}

// extractor holds the state of one ApplyLayer call; it is not safe for concurrent use.
type extractor struct {
	root  *os.Root
	opts  ApplyOptions
	chown bool
	// touched holds every path this layer created or passed through. Whiteouts hide lower
	// layers only, so they must spare these whatever order the entries come in.
	touched map[string]bool
	// whiteouts holds the overlay whiteouts this layer made, so that a directory that
	// replaces one can be made opaque (else the lower directory would show through).
	whiteouts map[string]bool
	// dirTimes are applied last: creating children changes a directory's mtime.
	dirTimes []dirTime
	written  int64
	buf      []byte

	// cached is the directory most recently opened by dir(); consecutive entries mostly
	// share a parent, and walking the path again for each would dominate small files.
	cachedPath string
	cached     *os.File
}

type dirTime struct {
	name         string
	atime, mtime time.Time
}

func (x *extractor) close() {
	x.dropCache()
	_ = x.root.Close()
}

func (x *extractor) dropCache() {
	if x.cached != nil {
		_ = x.cached.Close()
		x.cached = nil
		x.cachedPath = ""
	}
}

// cleanName turns a tar entry name into a slash path relative to the root, or reports why it
// may not be applied.
func cleanName(name string) (string, error) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", &UnsafeEntryError{Name: name, Reason: "path escapes the layer root"}
	}
	return p, nil
}

func (x *extractor) entry(hdr *tar.Header, tr *tar.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return &UnsafeEntryError{Name: hdr.Name, Reason: "device nodes and fifos are not allowed in images"}
	case tar.TypeDir, tar.TypeReg, tar.TypeGNUSparse, tar.TypeSymlink, tar.TypeLink:
	default:
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("unsupported tar entry type %q", hdr.Typeflag)}
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	parent, base := path.Dir(name), path.Base(name)
	for _, c := range strings.Split(parent, "/") {
		if strings.HasPrefix(c, whiteoutPrefix) {
			return &UnsafeEntryError{Name: hdr.Name, Reason: "whiteout name used as a directory"}
		}
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		if hdr.Typeflag == tar.TypeDir {
			return &UnsafeEntryError{Name: hdr.Name, Reason: "whiteout name used as a directory"}
		}
		return x.whiteout(hdr.Name, parent, base)
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return &UnsafeEntryError{Name: hdr.Name, Reason: "the layer root can only be a directory"}
		}
		x.dirTimes = append(x.dirTimes, dirTime{".", atime(hdr), hdr.ModTime})
		// The root's owner and mode belong to the image (they are "/" in the container).
		if x.chown {
			if err := x.root.Lchown(".", hdr.Uid, hdr.Gid); err != nil {
				return err
			}
		}
		return x.root.Chmod(".", os.FileMode(hdr.Mode&0o777)|modeExtra(hdr.Mode))
	}
	x.touch(name)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.mkdir(name, hdr)
	case tar.TypeSymlink:
		return x.symlink(name, hdr)
	case tar.TypeLink:
		return x.link(name, hdr)
	default:
		return x.file(name, hdr, tr)
	}
}

// modeExtra maps the setuid, setgid and sticky bits of a tar mode to os.FileMode, which
// keeps them apart from the permission bits.
func modeExtra(mode int64) os.FileMode {
	var m os.FileMode
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

func atime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

func (x *extractor) touch(name string) {
	for name != "." && !x.touched[name] {
		x.touched[name] = true
		name = path.Dir(name)
	}
}

// dir opens directory p beneath the root, creating it and its parents (0755, as tar -x does
// for directories a layer never lists) when missing. The returned file is owned by the
// extractor's cache; callers must not close it.
func (x *extractor) dir(p string) (*os.File, error) {
	if x.cached != nil && x.cachedPath == p {
		return x.cached, nil
	}
	x.dropCache()
	if p != "." {
		if err := x.root.MkdirAll(p, 0o755); err != nil {
			return nil, err
		}
	}
	f, err := x.root.OpenFile(p, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	x.cached, x.cachedPath = f, p
	return f, nil
}

// clear removes whatever exists at base in parent so the entry replaces it rather than
// writing through it; a directory is kept when keepDir is set (tar merges directories).
// It reports whether a directory was kept.
func (x *extractor) clear(parent *os.File, name, base string, keepDir bool) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(int(parent.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if keepDir {
			return true, nil
		}
		// Remove through the root so nothing in the tree is followed outside it.
		return false, x.root.RemoveAll(name)
	}
	return false, unix.Unlinkat(int(parent.Fd()), base, 0)
}

func (x *extractor) mkdir(name string, hdr *tar.Header) error {
	pf, err := x.dir(path.Dir(name))
	if err != nil {
		return err
	}
	base := path.Base(name)
	kept, err := x.clear(pf, name, base, true)
	if err != nil {
		return err
	}
	if !kept {
		if err := unix.Mkdirat(int(pf.Fd()), base, 0o700); err != nil {
			return err
		}
	}
	fd, err := unix.Openat(int(pf.Fd()), base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := x.attrs(fd, hdr); err != nil {
		return err
	}
	if x.opts.OverlayWhiteouts && x.whiteouts[name] {
		if err := unix.Fsetxattr(fd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark opaque: %w", err)
		}
	}
	x.dirTimes = append(x.dirTimes, dirTime{name, atime(hdr), hdr.ModTime})
	return nil
}

// attrs sets owner, mode and allowed xattrs on an open file. The order matters: chown clears
// setuid bits and file capabilities, so it goes first.
func (x *extractor) attrs(fd int, hdr *tar.Header) error {
	if x.chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, paxXattr)
		// trusted.* and the rest could forge overlayfs metadata (trusted.overlay.opaque,
		// redirect) or security labels; file capabilities and user xattrs are what images
		// legitimately carry.
		if !ok || !(attr == "security.capability" || strings.HasPrefix(attr, "user.")) {
			continue
		}
		err := unix.Fsetxattr(fd, attr, []byte(v), 0)
		if err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("set xattr %s: %w", attr, err)
		}
	}
	return nil
}

func (x *extractor) file(name string, hdr *tar.Header, tr *tar.Reader) error {
	pf, err := x.dir(path.Dir(name))
	if err != nil {
		return err
	}
	base := path.Base(name)
	if _, err := x.clear(pf, name, base, false); err != nil {
		return err
	}
	// O_EXCL|O_NOFOLLOW: the name was just cleared, so anything there now is not ours.
	fd, err := unix.Openat(int(pf.Fd()), base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	// The struct hides (*os.File).ReadFrom so that CopyBuffer uses our buffer instead of
	// allocating one per file.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, io.LimitReader(tr, hdr.Size), x.buf)
	x.written += n
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return fmt.Errorf("short file: %d of %d bytes", n, hdr.Size)
	}
	if err := x.attrs(fd, hdr); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return x.times(pf, base, hdr)
}

func (x *extractor) times(pf *os.File, base string, hdr *tar.Header) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime(hdr).UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(int(pf.Fd()), base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (x *extractor) symlink(name string, hdr *tar.Header) error {
	pf, err := x.dir(path.Dir(name))
	if err != nil {
		return err
	}
	base := path.Base(name)
	if _, err := x.clear(pf, name, base, false); err != nil {
		return err
	}
	// The target is stored as written: a symlink is harmless data until something resolves
	// it, and every resolution here goes through the root.
	if err := unix.Symlinkat(hdr.Linkname, int(pf.Fd()), base); err != nil {
		return err
	}
	if x.chown {
		if err := unix.Fchownat(int(pf.Fd()), base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	return x.times(pf, base, hdr)
}

func (x *extractor) link(name string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("hard link target %q escapes the layer root", hdr.Linkname)}
	}
	if target == name || target == "." || strings.HasPrefix(path.Base(target), whiteoutPrefix) {
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("invalid hard link target %q", hdr.Linkname)}
	}
	// The target's directory is opened through the root too, so a symlinked parent cannot
	// point the link at a file outside; linkat without AT_SYMLINK_FOLLOW never follows the
	// last component.
	tf, err := x.root.OpenFile(path.Dir(target), os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	defer tf.Close()
	pf, err := x.dir(path.Dir(name))
	if err != nil {
		return err
	}
	base := path.Base(name)
	if _, err := x.clear(pf, name, base, false); err != nil {
		return err
	}
	if err := unix.Linkat(int(tf.Fd()), path.Base(target), int(pf.Fd()), base, 0); err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	return nil
}

// whiteout applies ".wh.NAME" or ".wh..wh..opq" found in directory parent.
func (x *extractor) whiteout(entry, parent, base string) error {
	if base == opaqueWhiteout {
		x.touch(parent)
		return x.opaque(entry, parent)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." || strings.Contains(victim, "/") {
		return &UnsafeEntryError{Name: entry, Reason: "invalid whiteout"}
	}
	x.touch(parent)
	p := path.Join(parent, victim)
	if !x.opts.OverlayWhiteouts {
		x.dropCache()
		if x.touched[p] {
			// This layer provides p itself: the whiteout only hides what lower layers put
			// there, which for a directory is the part of its tree this layer did not write.
			if fi, err := x.root.Lstat(p); err == nil && fi.IsDir() {
				return x.removeUntouched(p)
			}
			return nil
		}
		return x.root.RemoveAll(p)
	}
	pf, err := x.dir(parent)
	if err != nil {
		return err
	}
	if x.touched[p] {
		// This layer provides p itself; when it is a directory, lower content under it must
		// still be hidden, which overlayfs spells "opaque".
		var st unix.Stat_t
		if err := unix.Fstatat(int(pf.Fd()), victim, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return x.setOpaque(pf, victim)
		}
		return nil
	}
	if _, err := x.clear(pf, p, victim, false); err != nil {
		return err
	}
	if err := unix.Mknodat(int(pf.Fd()), victim, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("create overlay whiteout: %w", err)
	}
	x.whiteouts[p] = true
	return nil
}

func (x *extractor) setOpaque(pf *os.File, base string) error {
	fd, err := unix.Openat(int(pf.Fd()), base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fsetxattr(fd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("mark opaque: %w", err)
	}
	return nil
}

// opaque hides everything lower layers put in dir.
func (x *extractor) opaque(entry, dir string) error {
	if x.opts.OverlayWhiteouts {
		f, err := x.dir(dir)
		if err != nil {
			return err
		}
		if err := unix.Fsetxattr(int(f.Fd()), overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark opaque: %w", err)
		}
		return nil
	}
	x.dropCache()
	return x.removeUntouched(dir)
}

// removeUntouched deletes the entries under dir that this layer did not provide.
func (x *extractor) removeUntouched(dir string) error {
	f, err := x.root.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if !x.touched[p] {
			if err := x.root.RemoveAll(p); err != nil {
				return err
			}
			continue
		}
		fi, err := x.root.Lstat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if err := x.removeUntouched(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// finish sets directory times, which every entry written into a directory disturbed.
func (x *extractor) finish() error {
	for i := len(x.dirTimes) - 1; i >= 0; i-- {
		d := x.dirTimes[i]
		if d.name == "." {
			if err := x.root.Chtimes(".", d.atime, d.mtime); err != nil {
				return err
			}
			continue
		}
		// A later entry may have replaced the directory or one of its parents; opening
		// without creating skips those instead of bringing them back.
		pf, err := x.root.OpenFile(path.Dir(d.name), os.O_RDONLY|unix.O_DIRECTORY, 0)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("layer entry %q: %w", d.name, err)
		}
		ts := []unix.Timespec{unix.NsecToTimespec(d.atime.UnixNano()), unix.NsecToTimespec(d.mtime.UnixNano())}
		err = unix.UtimesNanoAt(int(pf.Fd()), path.Base(d.name), ts, unix.AT_SYMLINK_NOFOLLOW)
		pf.Close()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("layer entry %q: set times: %w", d.name, err)
		}
	}
	return nil
}
