package hypervisor

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := Config{Name: "vm1", Dir: filepath.Join(dir, "run"), VCPUs: 1, MemoryMB: 256, Kernel: kernel}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string // "" means valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"forwards", func(c *Config) { c.Forwards = []PortForward{{8080, 80}, {2222, 22}} }, ""},
		{"tap", func(c *Config) { c.Net = &NetConfig{Tap: "cbtap0", MAC: "52:54:00:12:34:56"} }, ""},
		{"empty name", func(c *Config) { c.Name = "" }, "Name"},
		{"comma in name", func(c *Config) { c.Name = "a,b" }, "Name"},
		{"no dir", func(c *Config) { c.Dir = "" }, "Dir"},
		{"long dir", func(c *Config) { c.Dir = "/" + strings.Repeat("d", 120) }, "Dir"},
		{"accel", func(c *Config) { c.Accel = "hvf" }, "Accel"},
		{"vcpus", func(c *Config) { c.VCPUs = 0 }, "VCPUs"},
		{"memory", func(c *Config) { c.MemoryMB = 1 }, "MemoryMB"},
		{"nothing to boot", func(c *Config) { c.Kernel = "" }, "Disk"},
		{"initrd without kernel", func(c *Config) { c.Kernel, c.Disk, c.Initrd = "", kernel, kernel }, "Kernel"},
		{"missing kernel", func(c *Config) { c.Kernel = filepath.Join(dir, "nope") }, "Kernel"},
		{"missing seed", func(c *Config) { c.Seed = filepath.Join(dir, "nope.iso") }, "Seed"},
		{"disk format", func(c *Config) { c.Disk, c.DiskFormat = kernel, "vmdk" }, "DiskFormat"},
		{"newline in cmdline", func(c *Config) { c.Cmdline = "a\nb" }, "Cmdline"},
		{"bad tap", func(c *Config) { c.Net = &NetConfig{Tap: "tap,vhost=on"} }, "Net.Tap"},
		{"bad mac", func(c *Config) { c.Net = &NetConfig{Tap: "t0", MAC: "52:54:00:12:34"} }, "Net.MAC"},
		{"multicast mac", func(c *Config) { c.Net = &NetConfig{Tap: "t0", MAC: "01:54:00:12:34:56"} }, "Net.MAC"},
		{"forwards with tap", func(c *Config) { c.Net = &NetConfig{Tap: "t0"}; c.Forwards = []PortForward{{1, 2}} }, "Forwards"},
		{"bad port", func(c *Config) { c.Forwards = []PortForward{{0, 80}} }, "Forwards[0]"},
		{"duplicate port", func(c *Config) { c.Forwards = []PortForward{{80, 80}, {80, 81}} }, "Forwards[1]"},
		{"cgroup", func(c *Config) { c.Cgroup = &CgroupConfig{Path: "/cloudbox/p/vm", CPUShares: 2} }, ""},
		{"relative cgroup", func(c *Config) { c.Cgroup = &CgroupConfig{Path: "cloudbox/vm"} }, "Cgroup"},
		{"root cgroup", func(c *Config) { c.Cgroup = &CgroupConfig{Path: "/"} }, "Cgroup"},
		{"unclean cgroup", func(c *Config) { c.Cgroup = &CgroupConfig{Path: "/cloudbox/../vm"} }, "Cgroup"},
		{"negative memory limit", func(c *Config) { c.Cgroup = &CgroupConfig{Path: "/cloudbox/vm", MemoryLimitBytes: -1} }, "Cgroup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), ": "+tc.field+": ") {
				t.Fatalf("Validate = %v, want an ErrInvalidConfig naming %s", err, tc.field)
			}
		})
	}
}

// A comma in a path must not start a new QEMU option (file=/a,b,driver=... would).
func TestArgsEscapeCommas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a,b")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "d,isk.qcow2")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := Config{Name: "vm", Dir: dir, VCPUs: 1, MemoryMB: 128, Disk: disk, Kernel: disk, Cmdline: "a,b"}.withDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	args := c.args()
	wantBlock := "driver=qcow2,node-name=boot,file.driver=file,file.filename=" + strings.ReplaceAll(disk, ",", ",,")
	if !slices.Contains(args, wantBlock) {
		t.Errorf("args lack %q: %q", wantBlock, args)
	}
	wantQMP := "socket,id=qmp,path=" + strings.ReplaceAll(filepath.Join(dir, "qmp.sock"), ",", ",,") + ",server=on,wait=off"
	if !slices.Contains(args, wantQMP) {
		t.Errorf("args lack %q: %q", wantQMP, args)
	}
	// -kernel and -append take their argument verbatim.
	if i := slices.Index(args, "-kernel"); i < 0 || args[i+1] != disk {
		t.Errorf("-kernel not verbatim: %q", args)
	}
	if i := slices.Index(args, "-append"); i < 0 || args[i+1] != "a,b" {
		t.Errorf("-append not verbatim: %q", args)
	}
}

func TestArgsTap(t *testing.T) {
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	os.WriteFile(k, nil, 0o644)
	c := Config{Name: "vm", Dir: dir, VCPUs: 2, MemoryMB: 128, Kernel: k,
		Net: &NetConfig{Tap: "cbtap1", MAC: "52-54-00-AB-CD-EF"}}.withDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(c.args(), " ")
	for _, want := range []string{
		"-netdev tap,id=net0,ifname=cbtap1,script=no,downscript=no ",
		"virtio-net-pci,id=net0,netdev=net0,romfile=,mac=52:54:00:ab:cd:ef",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q: %s", want, args)
		}
	}
	if strings.Contains(args, "vhost") {
		t.Errorf("args mention vhost: %s", args)
	}
}

// TCG's translation cache is capped; vCPUs start stopped only when Start must move
// QEMU into a cgroup first.
func TestArgsAccelAndCgroup(t *testing.T) {
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	os.WriteFile(k, nil, 0o644)
	c := Config{Name: "vm", Dir: dir, VCPUs: 1, MemoryMB: 128, Kernel: k}.withDefaults()
	args := c.args()
	if i := slices.Index(args, "-accel"); i < 0 || args[i+1] != "tcg,tb-size=128" {
		t.Errorf("-accel: %q", args)
	}
	if slices.Contains(args, "-S") {
		t.Errorf("-S without a cgroup: %q", args)
	}
	c.Accel = KVM
	c.Cgroup = &CgroupConfig{Path: "/cloudbox/vm"}
	args = c.args()
	if i := slices.Index(args, "-accel"); i < 0 || args[i+1] != "kvm" {
		t.Errorf("-accel: %q", args)
	}
	if !slices.Contains(args, "-S") {
		t.Errorf("no -S with a cgroup: %q", args)
	}
}
