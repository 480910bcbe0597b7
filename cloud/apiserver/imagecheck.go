package apiserver

import (
	"fmt"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/hypervisor"
)

// checkImageFile is the check of Config.CheckImageFile when it is nil: the headers
// QEMU itself goes by, read by package hypervisor (the nodes check the same way before
// they boot). The staging path is cut from the message: the client named a part, not
// a file on the server.
func checkImageFile(role, path string) (string, error) {
	var format hypervisor.Format
	var err error
	switch role {
	case api.ImageFileDisk:
		format, err = hypervisor.DetectDiskFormat(path)
	case api.ImageFileKernel:
		err = hypervisor.CheckKernel(path)
	case api.ImageFileInitrd:
		err = hypervisor.CheckInitrd(path)
	default:
		return "", fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		return "", fmt.Errorf("%s", strings.TrimPrefix(err.Error(), path+": "))
	}
	return string(format), nil
}
