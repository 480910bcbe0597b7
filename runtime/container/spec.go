package container

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/capability"
	"github.com/moby/sys/user"
	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Spec describes one container. The zero value of every optional field means
// Docker's default.
type Spec struct {
	// ID names the container: ASCII letters, digits, '_', '+', '-' and '.',
	// unique within the Manager's StateRoot. It also names its cgroup, its
	// log file and its state directories.
	ID string
	// Pod, if not empty, names a pod made with CreatePod: the container joins
	// the pod's network, IPC and UTS namespaces, gets the pod's files
	// (/etc/hosts, ...) and /dev/shm, and its cgroup nests under the pod's.
	// Hostname and HostNetwork are then the pod's and must be left empty here.
	Pod string
	// RootfsLowerDirs are the image layer directories, lowest first. The
	// container gets an overlayfs over them with an upper and a work
	// directory of its own under StateRoot, removed by Destroy; the layers
	// are never written.
	RootfsLowerDirs []string
	// Rootfs is a ready root filesystem used in place, written to by the
	// container; for tests and for callers that prepare rootfs themselves.
	// Exactly one of Rootfs and RootfsLowerDirs must be set.
	Rootfs string
	// Args is the command line; Args[0] is looked up in the container's PATH.
	Args []string
	// Env is the environment as KEY=value. PATH gets Docker's default and
	// HOSTNAME the container's hostname when absent.
	Env []string
	// Cwd is the working directory inside the container; "" means "/".
	Cwd string
	// User is "uid", "uid:gid", "name" or "name:group", resolved against the
	// container's own /etc/passwd and /etc/group; "" means root.
	User string
	// Hostname of a container that has a UTS namespace of its own; "" means
	// the container ID (cut to 63 bytes).
	Hostname string
	// Limits caps the container's cgroup; zero fields mean no limit.
	Limits Limits
	// ReadOnlyRootfs mounts the root filesystem read-only. Mounts and Files
	// stay writable unless they say otherwise.
	ReadOnlyRootfs bool
	// Privileged grants every capability this process holds, access to every device (cgroup
	// rule "a *:* rwm"; only the default device nodes exist in /dev) and
	// writable /sys and /proc without masked paths, like docker --privileged.
	Privileged bool
	// CapAdd and CapDrop change the default capability set; names are given
	// with or without the "CAP_" prefix, in any case; "ALL" is accepted.
	// CapDrop is applied after CapAdd, as in Docker.
	CapAdd, CapDrop []string
	// Mounts are extra mounts, applied after the default ones.
	Mounts []Mount
	// HostNetwork runs the container in the host's network and UTS
	// namespaces (it keeps IPC, mount and PID namespaces of its own).
	HostNetwork bool
	// Files are written to a directory of the container's own and
	// bind-mounted (writable) over the given absolute paths, e.g.
	// "/etc/hosts", "/etc/hostname", "/etc/resolv.conf". For containers of a
	// pod, the pod's files come first and these override them.
	Files map[string][]byte
}

// Limits are the cgroup limits of a container.
type Limits struct {
	// CPUMilli is the CPU limit in thousandths of a CPU, enforced by CFS
	// quota over a 100 ms period (500 means half a CPU); 0 means no limit.
	CPUMilli int64
	// MemoryBytes is the memory limit (swap is not allowed on top of it
	// where the kernel accounts swap); 0 means no limit.
	MemoryBytes int64
	// Pids is the maximum number of tasks (processes and threads); 0 means
	// no limit.
	Pids int64
}

// MountType is the kind of an extra mount.
type MountType string

// Mount types; "" means MountBind.
const (
	MountBind  MountType = "bind"
	MountTmpfs MountType = "tmpfs"
)

// Mount is an extra mount of a container.
type Mount struct {
	// Source is the host path of a bind mount; unused for tmpfs.
	Source string
	// Destination is the absolute path inside the container.
	Destination string
	// ReadOnly makes the mount read-only.
	ReadOnly bool
	// Type is MountBind (also for "") or MountTmpfs.
	Type MountType
}

// execUser is the identity a process runs as, resolved from Spec.User
// (libcontainer sets HOME from the container's /etc/passwd itself).
type execUser struct {
	UID, GID int
	Groups   []int
}

// defaultCapabilities are Docker's (moby oci/caps/defaults.go): enough for
// ordinary images that start as root and drop privileges, without what
// lets a container reach the host (SYS_ADMIN, NET_ADMIN, SYS_MODULE...).
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// maskedPaths and readonlyPaths are Docker's defaults: /proc and /sys
// entries that leak host information or let a container poke the host kernel.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
		"/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

const (
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// maxNofile is the RLIMIT_NOFILE containers get where the host allows it
	// (Docker and containerd default to it); capped by the host's hard
	// limit, because raising a hard limit above it fails with EPERM (here
	// the hard limit is 20000).
	maxNofile = 1 << 20
	// cfsPeriod is the CFS period Kubernetes uses; CPUMilli scales the quota.
	cfsPeriod = 100000
	// minCFSQuota is the smallest quota the kernel accepts (1 ms).
	minCFSQuota = 1000
)

// validateSpec checks what libcontainer would otherwise reject late or,
// worse, ignore (unknown capabilities only log a warning there).
func validateSpec(s *Spec) error {
	if err := validateID(s.ID); err != nil {
		return err
	}
	if s.Pod != "" {
		if err := validateID(s.Pod); err != nil {
			return fmt.Errorf("pod: %w", err)
		}
		if s.HostNetwork || s.Hostname != "" {
			return fmt.Errorf("container %s: hostname and host network of a pod's container are the pod's: %w", s.ID, ErrInvalid)
		}
	}
	if len(s.Hostname) > 64 {
		return fmt.Errorf("container %s: hostname longer than 64 bytes: %w", s.ID, ErrInvalid)
	}
	if s.HostNetwork && s.Hostname != "" {
		return fmt.Errorf("container %s: a host-network container has the host's hostname: %w", s.ID, ErrInvalid)
	}
	if (s.Rootfs == "") == (len(s.RootfsLowerDirs) == 0) {
		return fmt.Errorf("container %s: exactly one of Rootfs and RootfsLowerDirs must be set: %w", s.ID, ErrInvalid)
	}
	for _, d := range append([]string{s.Rootfs}, s.RootfsLowerDirs...) {
		if d != "" && !filepath.IsAbs(d) {
			return fmt.Errorf("container %s: rootfs path %q is not absolute: %w", s.ID, d, ErrInvalid)
		}
	}
	if len(s.Args) == 0 || s.Args[0] == "" {
		return fmt.Errorf("container %s: no command: %w", s.ID, ErrInvalid)
	}
	if s.Cwd != "" && !filepath.IsAbs(s.Cwd) {
		return fmt.Errorf("container %s: cwd %q is not absolute: %w", s.ID, s.Cwd, ErrInvalid)
	}
	if s.Limits.CPUMilli < 0 || s.Limits.MemoryBytes < 0 || s.Limits.Pids < 0 {
		return fmt.Errorf("container %s: negative limit: %w", s.ID, ErrInvalid)
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("container %s: mount destination %q is not absolute: %w", s.ID, m.Destination, ErrInvalid)
		}
		switch m.Type {
		case "", MountBind:
			if !filepath.IsAbs(m.Source) {
				return fmt.Errorf("container %s: bind mount source %q is not absolute: %w", s.ID, m.Source, ErrInvalid)
			}
		case MountTmpfs:
		default:
			return fmt.Errorf("container %s: mount type %q: %w", s.ID, m.Type, ErrInvalid)
		}
	}
	for p := range s.Files {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			return fmt.Errorf("container %s: file path %q: %w", s.ID, p, ErrInvalid)
		}
	}
	if _, err := capabilitySet(s); err != nil {
		return fmt.Errorf("container %s: %w", s.ID, err)
	}
	return nil
}

// validateID applies libcontainer's rule to container and pod IDs, so that
// they are safe as file and cgroup names too.
func validateID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 200 {
		return fmt.Errorf("id %q: %w", id, ErrInvalid)
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '+', c == '-', c == '.':
		default:
			return fmt.Errorf("id %q: character %q: %w", id, c, ErrInvalid)
		}
	}
	return nil
}

// defaultHostname is an ID cut to the 63 bytes a hostname label may
// have (IDs may be longer; sethostname refuses more than 64).
func defaultHostname(id string) string {
	return strings.TrimRight(id[:min(len(id), 63)], "-.")
}

// normalizeCap turns "chown", "CHOWN" or "cap_chown" into "CAP_CHOWN".
func normalizeCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" || strings.HasPrefix(c, "CAP_") {
		return c
	}
	return "CAP_" + c
}

// availableCapabilities are the capabilities this process can hand out:
// those the kernel knows and our own bounding set still holds. A container
// asking for one outside it fails late with EPERM (this host runs the agent
// without CAP_SYS_RESOURCE, for one), so "all" means these.
var availableCapabilities = sync.OnceValue(func() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		if ok, err := capability.GetBound(c); err == nil && ok {
			out = append(out, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return out
})

// capabilitySet returns the bounding/effective/permitted set: Docker's
// defaults (or all available for Privileged), plus CapAdd, minus CapDrop.
// The result is never nil: libcontainer reads a nil set as "keep every
// capability".
func capabilitySet(s *Spec) ([]string, error) {
	known := capabilities.KnownCapabilities()
	avail := availableCapabilities()
	base := defaultCapabilities
	if s.Privileged {
		base = avail
	}
	set := slices.DeleteFunc(slices.Clone(base), func(c string) bool { return !slices.Contains(avail, c) })
	for _, c := range s.CapAdd {
		c = normalizeCap(c)
		switch {
		case c == "ALL":
			set = slices.Clone(avail)
		case slices.Contains(avail, c):
			if !slices.Contains(set, c) {
				set = append(set, c)
			}
		case slices.Contains(known, c):
			return nil, fmt.Errorf("capability %s is not in this process's bounding set: %w", c, ErrInvalid)
		default:
			return nil, fmt.Errorf("unknown capability %q: %w", c, ErrInvalid)
		}
	}
	for _, c := range s.CapDrop {
		c = normalizeCap(c)
		switch {
		case c == "ALL":
			set = set[:0]
		case slices.Contains(known, c):
			set = slices.DeleteFunc(set, func(x string) bool { return x == c })
		default:
			return nil, fmt.Errorf("unknown capability %q: %w", c, ErrInvalid)
		}
	}
	if set == nil {
		set = []string{}
	}
	return set, nil
}

// resolveUser reads the container's /etc/passwd and /etc/group, through
// SecureJoin so that a symlink in the image cannot make us read host files.
// Numeric users need no passwd entry.
func resolveUser(rootfs, spec string) (*execUser, error) {
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	u, err := user.GetExecUserPath(spec, &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("user %q: %v: %w", spec, err, ErrInvalid)
	}
	return &execUser{UID: u.Uid, GID: u.Gid, Groups: u.Sgids}, nil
}

// hostNofileLimit is the RLIMIT_NOFILE containers get: 1048576 or the
// host's hard limit, whichever is lower.
func hostNofileLimit() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	return min(uint64(maxNofile), rl.Max)
}

// buildEnv adds Docker's default PATH and HOSTNAME when missing.
func buildEnv(env []string, hostname string) []string {
	out := slices.Clone(env)
	has := func(k string) bool {
		return slices.ContainsFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
	}
	if !has("PATH") {
		out = append(out, defaultPath)
	}
	if hostname != "" && !has("HOSTNAME") {
		out = append(out, "HOSTNAME="+hostname)
	}
	return out
}

// nsConfig says which namespaces a container creates and which it joins.
type nsConfig struct {
	hostNetwork bool
	// netPath, ipcPath and utsPath are bind-mounted namespace files to
	// join; "" means a new namespace (or the host's for network and UTS
	// when hostNetwork).
	netPath, ipcPath, utsPath string
	// shmDir, if set, is bind-mounted at /dev/shm (the pod's shared shm).
	shmDir string
	// hostname is the pod's, for the HOSTNAME variable.
	hostname string
}

// buildOCISpec turns a Spec into an OCI runtime spec. We go through the OCI
// spec and runc's own converter (specconv) instead of filling
// configs.Config by hand because the converter encodes many rules learned
// the hard way (device nodes listed both as nodes and as cgroup rules, mount
// flag parsing, default devices) and the same spec, written as config.json,
// lets the benchmark run bare runc on exactly the same container.
func (m *Manager) buildOCISpec(s *Spec, rootfs string, u *execUser, ns nsConfig, files map[string]string, cgroupsPath string) *specs.Spec {
	hostname := s.Hostname
	switch {
	case ns.utsPath != "":
		hostname = ns.hostname
	case ns.hostNetwork:
		hostname, _ = os.Hostname()
	case hostname == "":
		hostname = defaultHostname(s.ID)
	}
	caps, _ := capabilitySet(s) // validated by validateSpec
	cwd := s.Cwd
	if cwd == "" {
		cwd = "/"
	}
	nofile := m.nofile
	spec := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs, Readonly: s.ReadOnlyRootfs},
		Process: &specs.Process{
			Args: s.Args,
			Env:  buildEnv(s.Env, hostname),
			Cwd:  cwd,
			User: specs.User{UID: uint32(u.UID), GID: uint32(u.GID), AdditionalGids: toUint32s(u.Groups)},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: caps,
				Permitted: caps,
			},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath,
			Resources:   m.resources(s),
		},
	}
	if ns.utsPath == "" && !ns.hostNetwork {
		spec.Hostname = hostname
	}

	addNS := func(t specs.LinuxNamespaceType, path string) {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
	}
	addNS(specs.PIDNamespace, "")
	addNS(specs.MountNamespace, "")
	addNS(specs.IPCNamespace, ns.ipcPath)
	if !ns.hostNetwork {
		addNS(specs.NetworkNamespace, ns.netPath)
		addNS(specs.UTSNamespace, ns.utsPath)
	}
	// Like Docker: a private cgroup namespace on cgroup v2 (the container
	// sees its own cgroup as /sys/fs/cgroup), the host's on v1.
	if m.cgroup2 {
		addNS(specs.CgroupNamespace, "")
	}

	ro := "ro"
	if s.Privileged {
		ro = "rw"
	}
	spec.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		// A tmpfs /dev with only the default nodes; without it the
		// rootfs's own /dev (or the image's device nodes) would show.
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", ro}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", ro}},
	}
	if ns.shmDir != "" {
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: ns.shmDir, Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
	} else {
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}})
	}
	for _, mnt := range s.Mounts {
		switch mnt.Type {
		case MountTmpfs:
			opts := []string{"nosuid", "nodev", "mode=1777"}
			if mnt.ReadOnly {
				opts = append(opts, "ro")
			}
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: mnt.Destination, Type: "tmpfs", Source: "tmpfs", Options: opts})
		default:
			opts := []string{"rbind", "rprivate"}
			if mnt.ReadOnly {
				opts = append(opts, "ro")
			}
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: mnt.Destination, Type: "bind", Source: mnt.Source, Options: opts})
		}
	}
	for _, dst := range slices.Sorted(maps.Keys(files)) {
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: dst, Type: "bind", Source: files[dst], Options: []string{"bind", "rprivate"}})
	}

	if !s.Privileged {
		spec.Linux.MaskedPaths = maskedPaths
		spec.Linux.ReadonlyPaths = readonlyPaths
	}
	return spec
}

// libcontainerConfig converts the OCI spec with runc's converter and adds
// what the converter leaves to the Process (rlimits, so that Exec'd
// processes get them too).
func libcontainerConfig(id string, spec *specs.Spec) (*configs.Config, error) {
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: id,
		Spec:       spec,
	})
	if err != nil {
		return nil, fmt.Errorf("container %s: libcontainer config: %w", id, err)
	}
	for _, rl := range spec.Process.Rlimits {
		if rl.Type == "RLIMIT_NOFILE" {
			cfg.Rlimits = append(cfg.Rlimits, configs.Rlimit{Type: unix.RLIMIT_NOFILE, Hard: rl.Hard, Soft: rl.Soft})
		}
	}
	return cfg, nil
}

// writeFiles writes the injected files under dir, one file per entry named
// after its index in sorted order (container paths may repeat base names),
// and returns destination → host path.
func writeFiles(dir string, files map[string][]byte) (map[string]string, error) {
	out := make(map[string]string, len(files))
	if len(files) == 0 {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for i, dst := range slices.Sorted(maps.Keys(files)) {
		p := filepath.Join(dir, strconv.Itoa(i)+"-"+filepath.Base(dst))
		if err := os.WriteFile(p, files[dst], 0o644); err != nil {
			return nil, err
		}
		out[filepath.Clean(dst)] = p
	}
	return out, nil
}

func toUint32s(in []int) []uint32 {
	out := make([]uint32, 0, len(in))
	for _, v := range in {
		out = append(out, uint32(v))
	}
	return out
}
