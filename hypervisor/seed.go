package hypervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// SeedLabel is the volume label cloud-init's NoCloud datasource looks for.
const SeedLabel = "cidata"

// DefaultUserData is written when Seed.UserData is empty: an empty cloud-config, so that
// cloud-init still runs its defaults (ssh keys from meta-data) rather than nothing.
const DefaultUserData = "#cloud-config\n{}\n"

// Seed is what a VM learns at first boot through cloud-init's NoCloud datasource.
type Seed struct {
	// InstanceID must change when the VM is a new instance; cloud-init runs its
	// per-instance modules again when it does. If empty, Hostname is used.
	InstanceID string
	Hostname   string
	// PublicKeys are ssh authorized keys for the default user.
	PublicKeys []string
	// UserData is written as is; if empty, DefaultUserData.
	UserData []byte
	// Network, if nil, leaves the guest to its default (DHCP in cloud images).
	Network *SeedNetwork
}

// SeedNetwork is a static configuration of the VM's one network interface.
type SeedNetwork struct {
	// MAC selects the interface; if empty, the config applies to eth0.
	MAC string
	// Address is the interface address in CIDR form, e.g. 10.0.0.5/24.
	Address string
	// Gateway, if not empty, is the default route.
	Gateway     string
	Nameservers []string
	Search      []string
}

// WriteSeed writes s as a NoCloud seed: an ISO9660 image labelled cidata with meta-data,
// user-data and network-config. Rock Ridge and Joliet keep the lowercase names that
// Linux and cloud-init look for. The file is replaced atomically.
func WriteSeed(path string, s Seed) error {
	files := map[string][]byte{
		"meta-data": []byte(s.metaData()),
		"user-data": s.UserData,
	}
	if len(s.UserData) == 0 {
		files["user-data"] = []byte(DefaultUserData)
	}
	if s.Network != nil {
		files["network-config"] = []byte(s.Network.config())
	}
	// Room for the descriptors, the directories of three namespaces and the files, in
	// whole 2 KiB blocks.
	var size int64 = 64 << 10
	for _, b := range files {
		size += (int64(len(b))/2048 + 1) * 2048
	}

	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := writeISO(f, size, files); err != nil {
		f.Close()
		return fmt.Errorf("seed %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeISO(f *os.File, size int64, files map[string][]byte) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	// go-diskfs stages the files in a workspace directory of its own.
	fs, err := iso9660.Create(file.New(f, false), size, 0, 2048, "")
	if err != nil {
		return err
	}
	defer os.RemoveAll(fs.Workspace())
	for name, body := range files {
		w, err := fs.OpenFile(name, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return err
		}
		if _, err := w.Write(body); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	return fs.Finalize(iso9660.FinalizeOptions{RockRidge: true, Joliet: true, VolumeIdentifier: SeedLabel})
}

// metaData renders meta-data. Values are quoted so that no hostname or key can change
// the YAML's structure.
func (s Seed) metaData() string {
	id := s.InstanceID
	if id == "" {
		id = s.Hostname
	}
	var b strings.Builder
	fmt.Fprintf(&b, "instance-id: %s\n", yamlString(id))
	if s.Hostname != "" {
		fmt.Fprintf(&b, "local-hostname: %s\n", yamlString(s.Hostname))
	}
	if len(s.PublicKeys) > 0 {
		b.WriteString("public-keys:\n")
		for _, k := range s.PublicKeys {
			fmt.Fprintf(&b, "  - %s\n", yamlString(strings.TrimSpace(k)))
		}
	}
	return b.String()
}

// config renders network-config version 2 with one ethernet.
func (n SeedNetwork) config() string {
	var b strings.Builder
	b.WriteString("version: 2\nethernets:\n  eth0:\n")
	if n.MAC != "" {
		fmt.Fprintf(&b, "    match:\n      macaddress: %s\n    set-name: eth0\n", yamlString(strings.ToLower(n.MAC)))
	}
	if n.Address != "" {
		fmt.Fprintf(&b, "    addresses: [%s]\n", yamlString(n.Address))
	} else {
		b.WriteString("    dhcp4: true\n")
	}
	if n.Gateway != "" {
		fmt.Fprintf(&b, "    routes:\n      - to: default\n        via: %s\n", yamlString(n.Gateway))
	}
	if len(n.Nameservers) > 0 || len(n.Search) > 0 {
		b.WriteString("    nameservers:\n")
		if len(n.Nameservers) > 0 {
			fmt.Fprintf(&b, "      addresses: [%s]\n", yamlList(n.Nameservers))
		}
		if len(n.Search) > 0 {
			fmt.Fprintf(&b, "      search: [%s]\n", yamlList(n.Search))
		}
	}
	return b.String()
}

// yamlString quotes s as a YAML double-quoted scalar (JSON string syntax is valid there).
func yamlString(s string) string { return strconv.Quote(s) }

func yamlList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = yamlString(s)
	}
	return strings.Join(q, ", ")
}
