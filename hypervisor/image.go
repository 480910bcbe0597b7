package hypervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Format is a disk image format as qemu-img names it.
type Format string

// The disk formats cloudbox boots and attaches.
const (
	FormatQCOW2 Format = "qcow2"
	FormatRaw   Format = "raw"
)

// Errors for files that are not what a VM was told they are, so that a typo in an image
// path fails before QEMU starts and not as a guest that never boots.
var (
	ErrNotDisk   = errors.New("not a disk image")
	ErrNotKernel = errors.New("not a bootable Linux kernel")
	ErrNotInitrd = errors.New("not an initramfs")
)

// headerSize covers the qcow2 magic, the boot sector, the GPT header and the first
// ISO9660 volume descriptor.
const headerSize = 0x8006

// DetectDiskFormat tells qcow2 from raw by content, never by name: a raw file is accepted
// only if it starts like a disk (boot signature, GPT or ISO9660), because QEMU would
// boot any file as raw and the guest would fail later with a far less clear error.
func DetectDiskFormat(path string) (Format, error) {
	hdr, err := readHeader(path, headerSize)
	if err != nil {
		return "", err
	}
	f, ok := diskFormat(hdr)
	switch {
	case ok:
		return f, nil
	case foreignDisk(hdr):
		return "", fmt.Errorf("%s: %w: a VMDK, VHDX or VDI disk: convert it first (qemu-img convert -O qcow2 IN OUT)", path, ErrNotDisk)
	}
	return "", fmt.Errorf("%s: %w: no qcow2 header, boot sector or partition table", path, ErrNotDisk)
}

// foreignDisk says whether hdr starts like a disk of another hypervisor, which QEMU
// could read but cloudbox does not boot (overlays and hot-plug assume qcow2 or raw).
func foreignDisk(hdr []byte) bool {
	return bytes.HasPrefix(hdr, []byte("KDMV")) || bytes.HasPrefix(hdr, []byte("vhdxfile")) ||
		(len(hdr) >= 0x44 && bytes.Equal(hdr[0x40:0x44], []byte("\x7f\x10\xda\xbe")))
}

// diskFormat looks at the first bytes of an image; hdr may be short.
func diskFormat(hdr []byte) (Format, bool) {
	switch {
	case bytes.HasPrefix(hdr, []byte("QFI\xfb")):
		return FormatQCOW2, true
	case len(hdr) >= 512 && hdr[510] == 0x55 && hdr[511] == 0xaa:
		return FormatRaw, true // MBR, protective MBR of a GPT disk, or a FAT boot sector
	case len(hdr) >= 520 && bytes.Equal(hdr[512:520], []byte("EFI PART")):
		return FormatRaw, true // GPT whose protective MBR lacks the signature
	case len(hdr) >= 0x8006 && bytes.Equal(hdr[0x8001:0x8006], []byte("CD001")):
		return FormatRaw, true // ISO9660
	}
	return "", false
}

// CheckKernel checks that path is an x86 bzImage, the only kernel QEMU's -kernel boots
// directly (its setup header says "HdrS" at 0x202).
func CheckKernel(path string) error {
	hdr, err := readHeader(path, 0x206)
	if err != nil {
		return err
	}
	if len(hdr) < 0x206 || !bytes.Equal(hdr[0x202:0x206], []byte("HdrS")) {
		return fmt.Errorf("%s: %w: no bzImage setup header", path, ErrNotKernel)
	}
	return nil
}

// initrdMagics are the formats the kernel unpacks into the initramfs.
var initrdMagics = [][]byte{
	{0x1f, 0x8b},                       // gzip
	[]byte("\xfd7zXZ\x00"),             // xz
	{0x28, 0xb5, 0x2f, 0xfd},           // zstd
	{0x02, 0x21, 0x4c, 0x18},           // lz4 legacy, as the kernel writes it
	{0x04, 0x22, 0x4d, 0x18},           // lz4 frame
	[]byte("BZh"),                      // bzip2
	{0x5d, 0x00, 0x00},                 // lzma
	{0x89, 'L', 'Z', 'O'},              // lzop
	[]byte("070701"), []byte("070702"), // newc cpio, uncompressed (or an early microcode cpio)
}

// CheckInitrd checks that path starts like a compressed or plain cpio archive.
func CheckInitrd(path string) error {
	hdr, err := readHeader(path, 8)
	if err != nil {
		return err
	}
	for _, m := range initrdMagics {
		if bytes.HasPrefix(hdr, m) {
			return nil
		}
	}
	return fmt.Errorf("%s: %w: not a cpio archive nor gzip, xz, zstd, lz4, bzip2, lzma or lzo", path, ErrNotInitrd)
}

// readHeader reads up to n bytes from the start of path; a shorter file is not an error.
func readHeader(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	got, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return buf[:got], nil
}
