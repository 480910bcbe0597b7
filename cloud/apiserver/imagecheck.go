package apiserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// checkImageFile is the check of Config.CheckImageFile when it is nil: it reads the
// headers that QEMU itself goes by. It stands in for hypervisor.DetectDiskFormat,
// CheckKernel and CheckInitrd until those exist; cloud/server should pass them then.
func checkImageFile(role, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 1024)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	head = head[:n]
	at := func(off int, magic string) bool {
		return len(head) >= off+len(magic) && string(head[off:off+len(magic)]) == magic
	}
	switch role {
	case api.ImageFileDisk:
		switch {
		case at(0, "QFI\xfb"):
			return "qcow2", nil
		case at(510, "\x55\xaa"), at(512, "EFI PART"):
			return "raw", nil
		case at(0, "KDMV"), at(0, "vhdxfile"), at(0x40, "\x7f\x10\xda\xbe"):
			return "", errors.New("a VMDK, VHDX or VDI disk: convert it first (qemu-img convert -O qcow2 IN OUT)")
		}
		return "", errors.New("not a disk image: no qcow2 header, boot sector or partition table")
	case api.ImageFileKernel:
		if at(0x202, "HdrS") {
			return "", nil
		}
		return "", errors.New("not a Linux kernel: no bzImage header (\"HdrS\" at 0x202)")
	case api.ImageFileInitrd:
		for _, magic := range []string{"\x1f\x8b", "070701", "070702", "070707", "\xfd7zXZ\x00", "\x28\xb5\x2f\xfd", "\x02\x21\x4c\x18", "BZh", "\x5d\x00\x00", "\x89LZO"} {
			if bytes.HasPrefix(head, []byte(magic)) {
				return "", nil
			}
		}
		return "", errors.New("not an initrd: neither a cpio archive nor a compressed one")
	}
	return "", fmt.Errorf("unknown role %q", role)
}
