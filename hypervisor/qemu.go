package hypervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// DefaultQEMU is the binary Start runs when Config.QEMU is empty.
const DefaultQEMU = "qemu-system-x86_64"

// Names of the files Start keeps in Config.Dir. They are fixed so that Attach finds a VM
// from its directory alone after an agent restart.
const (
	qmpSocket     = "qmp.sock"
	consoleSocket = "console.sock"
	consoleLog    = "console.log"
	pidFile       = "qemu.pid"
	stderrFile    = "qemu.stderr"
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid VM config")

// isISO9660 reports whether the image at path has an ISO 9660 volume descriptor.
func isISO9660(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 5)
	_, err = f.ReadAt(magic, 0x8001)
	return err == nil && string(magic) == "CD001"
}

// Config describes one VM. The zero value is not usable: Name, Dir, VCPUs and MemoryMB
// are required, and at least one of Disk or Kernel.
type Config struct {
	// Name names the VM in QEMU's -name and in logs: letters, digits, '.', '_' and '-'.
	Name string
	// Dir is the VM's runtime directory (sockets, pidfile, console log). It is created if
	// missing and must be short enough for unix socket paths (about 100 bytes).
	Dir string
	// QEMU is the emulator binary. If empty, DefaultQEMU from $PATH.
	QEMU string
	// Accel is the accelerator, usually what ProbeAccel chose. If empty, TCG.
	Accel Accel
	// VCPUs and MemoryMB size the VM.
	VCPUs    int
	MemoryMB int
	// Disk is the boot disk, a qcow2 overlay unless DiskFormat says otherwise. Optional.
	Disk string
	// DiskFormat is Disk's format: "qcow2" (if empty) or "raw". It is never probed from
	// the file, since a guest could write a qcow2 header into a raw disk.
	DiskFormat string
	// Kernel, Initrd and Cmdline boot a kernel directly, with or without Disk. Initrd and
	// Cmdline need Kernel.
	Kernel, Initrd, Cmdline string
	// Seed is a cloud-init NoCloud seed image, attached read-only: an ISO 9660 image as
	// an IDE cdrom, anything else (a FAT image) as a virtio disk. Optional.
	Seed string
	// Net, if non-nil, connects the VM to an existing tap device. If nil, the VM gets
	// QEMU's user-mode network with Forwards.
	Net *NetConfig
	// Forwards publishes guest TCP ports on 127.0.0.1; user-mode networking only.
	Forwards []PortForward
	// Cgroup, if not nil, is the cgroup Start puts QEMU in, with its limits. If nil,
	// QEMU stays in the caller's cgroups.
	Cgroup *CgroupConfig
}

// NetConfig connects the VM's NIC to a tap device the caller created (on a bridge).
type NetConfig struct {
	// Tap is the tap device's name; it must already exist.
	Tap string
	// MAC is the NIC's address. If empty, QEMU picks one.
	MAC string
}

// PortForward publishes guest TCP port GuestPort on 127.0.0.1:HostPort.
type PortForward struct{ HostPort, GuestPort int }

var (
	// QEMU ids must start with a letter; Name also lands in log lines, so keep it plain.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	// IFNAMSIZ is 16 including the NUL.
	tapRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$`)
)

// maxSocketPath is sun_path's size minus the NUL.
const maxSocketPath = 107

func (c Config) withDefaults() Config {
	if c.QEMU == "" {
		c.QEMU = DefaultQEMU
	}
	if c.Accel == "" {
		c.Accel = TCG
	}
	if c.DiskFormat == "" {
		c.DiskFormat = "qcow2"
	}
	if c.Dir != "" {
		if abs, err := filepath.Abs(c.Dir); err == nil {
			c.Dir = abs
		}
	}
	// QEMU chdirs to / when it daemonizes, so every path it opens must be absolute.
	for _, p := range []*string{&c.Disk, &c.Kernel, &c.Initrd, &c.Seed} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	return c
}

// Validate reports the first thing wrong with c, naming the field. Start calls it (after
// filling defaults), so callers need it only to check a config early.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	if !nameRE.MatchString(c.Name) {
		return bad("Name", "%q must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", c.Name)
	}
	if c.Dir == "" {
		return bad("Dir", "required")
	}
	if err := checkPathChars(c.Dir); err != nil {
		return bad("Dir", "%v", err)
	}
	if n := len(filepath.Join(c.Dir, consoleSocket)); n > maxSocketPath {
		return bad("Dir", "%q is too long for a unix socket inside it (%d > %d bytes)", c.Dir, n, maxSocketPath)
	}
	if c.Accel != KVM && c.Accel != TCG {
		return bad("Accel", "%q is not %q or %q", c.Accel, KVM, TCG)
	}
	if c.VCPUs < 1 || c.VCPUs > 255 {
		return bad("VCPUs", "%d is not between 1 and 255", c.VCPUs)
	}
	if c.MemoryMB < 16 || c.MemoryMB > 1<<20 {
		return bad("MemoryMB", "%d is not between 16 and 1048576", c.MemoryMB)
	}
	if c.Disk == "" && c.Kernel == "" {
		return bad("Disk", "a boot disk or a Kernel is required")
	}
	if c.DiskFormat != "qcow2" && c.DiskFormat != "raw" {
		return bad("DiskFormat", "%q is not qcow2 or raw", c.DiskFormat)
	}
	if c.Kernel == "" && (c.Initrd != "" || c.Cmdline != "") {
		return bad("Kernel", "required when Initrd or Cmdline is set")
	}
	for _, f := range []struct{ name, path string }{
		{"Disk", c.Disk}, {"Kernel", c.Kernel}, {"Initrd", c.Initrd}, {"Seed", c.Seed},
	} {
		if f.path == "" {
			continue
		}
		if err := checkPathChars(f.path); err != nil {
			return bad(f.name, "%v", err)
		}
		st, err := os.Stat(f.path)
		if err != nil {
			return bad(f.name, "%v", err)
		}
		if !st.Mode().IsRegular() && st.Mode()&os.ModeDevice == 0 {
			return bad(f.name, "%s is not a regular file or block device", f.path)
		}
	}
	if strings.ContainsAny(c.Cmdline, "\x00\n") {
		return bad("Cmdline", "contains a NUL or newline")
	}
	if c.Net != nil {
		if len(c.Forwards) > 0 {
			return bad("Forwards", "port forwards need user-mode networking (Net is set)")
		}
		if !tapRE.MatchString(c.Net.Tap) {
			return bad("Net.Tap", "%q is not a device name (1-15 letters, digits, '.', '_', '-')", c.Net.Tap)
		}
		if c.Net.MAC != "" {
			hw, err := net.ParseMAC(c.Net.MAC)
			if err != nil || len(hw) != 6 {
				return bad("Net.MAC", "%q is not a 6-byte MAC address", c.Net.MAC)
			}
			if hw[0]&1 != 0 {
				return bad("Net.MAC", "%q is a multicast address", c.Net.MAC)
			}
		}
	}
	seen := map[int]bool{}
	for i, f := range c.Forwards {
		field := "Forwards[" + strconv.Itoa(i) + "]"
		if f.HostPort < 1 || f.HostPort > 65535 || f.GuestPort < 1 || f.GuestPort > 65535 {
			return bad(field, "ports %d->%d are not between 1 and 65535", f.HostPort, f.GuestPort)
		}
		if seen[f.HostPort] {
			return bad(field, "host port %d is forwarded twice", f.HostPort)
		}
		seen[f.HostPort] = true
	}
	if c.Cgroup != nil {
		if err := c.Cgroup.validate(); err != nil {
			return bad("Cgroup", "%v", err)
		}
	}
	return nil
}

// checkPathChars refuses what cannot be passed through QEMU's option syntax even with
// escaping.
func checkPathChars(p string) error {
	if strings.ContainsAny(p, "\x00\n\r") {
		return fmt.Errorf("%q contains a NUL or newline", p)
	}
	return nil
}

// optValue escapes a value for QEMU's "key=value,key=value" option strings, where a
// comma inside a value is written as two.
func optValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// accelArg is -accel's value.
func (c Config) accelArg() string {
	if c.Accel == TCG {
		return string(TCG) + ",tb-size=" + strconv.Itoa(tcgTBSizeMB)
	}
	return string(c.Accel)
}

// args is the QEMU command line for c (already defaulted and validated) with its runtime
// files in c.Dir.
func (c Config) args() []string {
	p := func(name string) string { return filepath.Join(c.Dir, name) }
	a := []string{
		"-name", "guest=" + c.Name,
		"-machine", "pc", // hotplug of virtio-blk-pci works on pc; q35 needs root ports made at start
		"-accel", c.accelArg(),
		"-smp", strconv.Itoa(c.VCPUs),
		"-m", strconv.Itoa(c.MemoryMB),
		"-nodefaults", "-no-user-config", "-nographic", "-display", "none",
		// Daemonized, QEMU outlives the agent, which re-attaches through qmp.sock.
		"-daemonize", "-pidfile", p(pidFile),
		"-chardev", "socket,id=qmp,path=" + optValue(p(qmpSocket)) + ",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		// The log file records all guest output, whether or not a console client is attached.
		"-chardev", "socket,id=serial0,path=" + optValue(p(consoleSocket)) + ",server=on,wait=off,logfile=" +
			optValue(p(consoleLog)) + ",logappend=on",
		"-serial", "chardev:serial0",
	}
	if c.Accel == KVM {
		a = append(a, "-cpu", "host")
	}
	if c.Cgroup != nil {
		// Start moves QEMU into its cgroup after it daemonized, then lets the vCPUs run
		// (QMP cont), so that the guest never runs outside it.
		a = append(a, "-S")
	}
	if c.Kernel != "" {
		// -kernel, -initrd and -append take their argument verbatim: no escaping.
		a = append(a, "-kernel", c.Kernel)
		if c.Initrd != "" {
			a = append(a, "-initrd", c.Initrd)
		}
		if c.Cmdline != "" {
			a = append(a, "-append", c.Cmdline)
		}
	}
	if c.Disk != "" {
		a = append(a,
			"-blockdev", "driver="+c.DiskFormat+",node-name=boot,file.driver=file,file.filename="+optValue(c.Disk),
			"-device", "virtio-blk-pci,id=boot,drive=boot,bootindex=1")
	}
	if c.Seed != "" {
		// An ISO goes on a cdrom; a FAT image cannot (Linux does not mount vfat with
		// 512-byte sectors from a 2048-byte-sector cdrom), so it becomes a disk.
		dev := "virtio-blk-pci,id=seed,drive=seed"
		if isISO9660(c.Seed) {
			dev = "ide-cd,id=seed,drive=seed"
		}
		a = append(a,
			"-blockdev", "driver=raw,node-name=seed,read-only=on,file.driver=file,file.read-only=on,file.filename="+optValue(c.Seed),
			"-device", dev)
	}
	// romfile= drops the iPXE option ROM: VMs boot from disk or kernel, never the network.
	if c.Net != nil {
		dev := "virtio-net-pci,id=net0,netdev=net0,romfile="
		if hw, err := net.ParseMAC(c.Net.MAC); err == nil {
			dev += ",mac=" + hw.String() // QEMU wants the colon form; ParseMAC takes others
		}
		// No vhost: it needs /dev/vhost-net, and vhost=on aborts QEMU where that is missing.
		a = append(a, "-netdev", "tap,id=net0,ifname="+c.Net.Tap+",script=no,downscript=no", "-device", dev)
	} else {
		nd := "user,id=net0"
		for _, f := range c.Forwards {
			nd += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.HostPort, f.GuestPort)
		}
		a = append(a, "-netdev", nd, "-device", "virtio-net-pci,id=net0,netdev=net0,romfile=")
	}
	return a
}
