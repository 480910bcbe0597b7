package agent

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// HostResources is what a node offers, read from the host.
type HostResources struct {
	Hostname    string
	CPUs        int
	MemoryBytes int64
	Pods        int
	Arch        string
	Kernel      string
	OSImage     string
	Addresses   []api.NodeAddress
}

// maxPodsPerNode is Kubernetes's default pod capacity.
const maxPodsPerNode = 110

// ReadHostResources reads CPUs, memory, addresses and OS facts of this machine.
func ReadHostResources() (*HostResources, error) {
	h := &HostResources{CPUs: runtime.NumCPU(), Pods: maxPodsPerNode, Arch: runtime.GOARCH}
	var err error
	if h.Hostname, err = os.Hostname(); err != nil {
		return nil, err
	}
	h.Hostname = strings.ToLower(h.Hostname)
	if h.MemoryBytes, err = memTotal(); err != nil {
		return nil, err
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		h.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	h.OSImage = osImage()
	h.Addresses = []api.NodeAddress{{Type: "Hostname", Address: h.Hostname}}
	if ip := primaryIP(); ip != "" {
		h.Addresses = append([]api.NodeAddress{{Type: "InternalIP", Address: ip}}, h.Addresses...)
	}
	return h, nil
}

// List is the resources as a ResourceList (capacity and allocatable).
func (h *HostResources) List() api.ResourceList {
	return api.ResourceList{
		api.ResourceCPU:    api.NewQuantity(int64(h.CPUs)),
		api.ResourceMemory: api.NewBinaryQuantity(h.MemoryBytes),
		api.ResourcePods:   api.NewQuantity(int64(h.Pods)),
	}
}

func memTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/meminfo has no MemTotal")
}

func osImage() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// primaryIP is the first global unicast IPv4 address of an interface that is up. It
// reads the host's own addresses; it never probes the network.
func primaryIP() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	return ""
}
