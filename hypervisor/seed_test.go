package hypervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

func readSeed(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := file.OpenFromPath(path, true)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer b.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := iso9660.Read(b, st.Size(), 0, 2048)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if got := strings.TrimRight(fs.Label(), " \x00"); got != SeedLabel {
		t.Errorf("volume label %q, want %q", got, SeedLabel)
	}
	entries, err := fs.ReadDir(".")
	if err != nil {
		t.Fatalf("readdir: %v", err)
	}
	files := map[string]string{}
	for _, e := range entries {
		body, err := fs.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(body)
	}
	return files
}

func TestWriteSeed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "seed.iso")
	s := Seed{
		InstanceID: "i-0123",
		Hostname:   "web-1",
		PublicKeys: []string{"ssh-ed25519 AAAAC3Nza a@b", " ssh-rsa AAAAB3 c@d\n"},
		UserData:   []byte("#!/bin/sh\necho hello\n"),
		Network: &SeedNetwork{
			MAC: "52:54:00:AB:CD:EF", Address: "10.0.0.5/24", Gateway: "10.0.0.1",
			Nameservers: []string{"10.0.0.2"}, Search: []string{"default.svc.cluster.local"},
		},
	}
	if err := WriteSeed(p, s); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"meta-data": `instance-id: "i-0123"
local-hostname: "web-1"
public-keys:
  - "ssh-ed25519 AAAAC3Nza a@b"
  - "ssh-rsa AAAAB3 c@d"
`,
		"user-data": "#!/bin/sh\necho hello\n",
		"network-config": `version: 2
ethernets:
  eth0:
    match:
      macaddress: "52:54:00:ab:cd:ef"
    set-name: eth0
    addresses: ["10.0.0.5/24"]
    routes:
      - to: default
        via: "10.0.0.1"
    nameservers:
      addresses: ["10.0.0.2"]
      search: ["default.svc.cluster.local"]
`,
	}
	got := readSeed(t, p)
	for name, body := range want {
		if got[name] != body {
			t.Errorf("%s:\n%s\nwant:\n%s", name, got[name], body)
		}
	}
	if len(got) != len(want) {
		t.Errorf("files %v", got)
	}
	if f, err := DetectDiskFormat(p); err != nil || f != FormatRaw {
		t.Errorf("DetectDiskFormat(seed) = %q, %v", f, err)
	}
	// blkid reads the label the way the guest's findfs and cloud-init do.
	if out, err := exec.Command("blkid", "-o", "value", "-s", "LABEL", p).Output(); err == nil {
		if strings.TrimSpace(string(out)) != SeedLabel {
			t.Errorf("blkid label %q", out)
		}
	}

	// Rewriting replaces the seed atomically and leaves no temporaries; without
	// user-data or network the defaults apply.
	if err := WriteSeed(p, Seed{Hostname: "db"}); err != nil {
		t.Fatal(err)
	}
	got = readSeed(t, p)
	if got["user-data"] != DefaultUserData || got["meta-data"] != "instance-id: \"db\"\nlocal-hostname: \"db\"\n" {
		t.Errorf("defaults: %q", got)
	}
	if _, ok := got["network-config"]; ok {
		t.Error("network-config written without a network")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left in %s: %v", dir, entries)
	}
	if err := WriteSeed(filepath.Join(dir, "missing", "seed.iso"), s); err == nil {
		t.Error("WriteSeed into a missing directory succeeded")
	}
}
