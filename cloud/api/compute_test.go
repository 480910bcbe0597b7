package api

import (
	"strings"
	"testing"
)

const testPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFfNh/WlnN9oQVRkwJYKbnSqytnNka9GLKnMphny7nig user@host"

// checkCase runs one table case: want is a substring of the error, "" for valid.
func checkCase(t *testing.T, name string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: unexpected error: %v", name, err)
	case want != "" && err == nil:
		t.Errorf("%s: no error, want %q", name, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q, want it to contain %q", name, err, want)
	}
}

func testInstance() *Instance {
	in := &Instance{}
	in.Name, in.Namespace = "web-1", "default"
	in.Spec = InstanceSpec{Flavor: "m1.tiny", Image: "cirros"}
	return in
}

func TestInstanceDefaults(t *testing.T) {
	in := testInstance()
	Default(in)
	if in.APIVersion != "compute/v1" || in.Kind != "Instance" {
		t.Fatalf("type meta: %+v", in.TypeMeta)
	}
	if len(in.Spec.Networks) != 1 || in.Spec.Networks[0] != NetworkPod || in.Spec.PowerState != PowerRunning {
		t.Fatalf("defaults: %+v", in.Spec)
	}
}

func TestInstanceValidation(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Instance)
		want   string
	}{
		{"valid", func(*Instance) {}, ""},
		{"everything", func(in *Instance) {
			in.Spec.KeyPair, in.Spec.UserData, in.Spec.Volumes = "mykey", "#cloud-config\n", []string{"data", "logs"}
			in.Spec.Networks, in.Spec.AvailabilityZone, in.Spec.PowerState = []string{NetworkUser}, "zone-a", PowerPaused
			in.Spec.Reboot = &RebootRequest{Type: RebootHard, ID: "1"}
		}, ""},
		{"name 60", func(in *Instance) { in.Name = strings.Repeat("a", 60) }, ""},
		{"name 61", func(in *Instance) { in.Name = strings.Repeat("a", 61) }, "metadata.name: must be at most 60 characters"},
		{"no flavor", func(in *Instance) { in.Spec.Flavor = "" }, "spec.flavor: required"},
		{"bad flavor", func(in *Instance) { in.Spec.Flavor = "M1_Tiny" }, "spec.flavor: \"M1_Tiny\" must be a DNS-1123 subdomain"},
		{"no image", func(in *Instance) { in.Spec.Image = "" }, "spec.image: required"},
		{"bad key pair", func(in *Instance) { in.Spec.KeyPair = "my key" }, "spec.keyPair"},
		{"user data too big", func(in *Instance) { in.Spec.UserData = strings.Repeat("x", 64<<10+1) }, "spec.userData: is 65537 bytes, must be at most 65536"},
		{"user data 64 KiB", func(in *Instance) { in.Spec.UserData = strings.Repeat("x", 64<<10) }, ""},
		{"volume twice", func(in *Instance) { in.Spec.Volumes = []string{"a", "a"} }, "spec.volumes[1]: volume \"a\" is listed twice"},
		{"bad volume", func(in *Instance) { in.Spec.Volumes = []string{"Data"} }, "spec.volumes[0]: \"Data\" must be a DNS-1123 label"},
		{"empty volume", func(in *Instance) { in.Spec.Volumes = []string{""} }, "spec.volumes[0]: required"},
		{"bad network", func(in *Instance) { in.Spec.Networks = []string{"bridge"} }, "spec.networks[0]: \"bridge\" must be one of pod, user"},
		{"two networks", func(in *Instance) { in.Spec.Networks = []string{"pod", "user"} }, "spec.networks: at most one network"},
		{"bad power", func(in *Instance) { in.Spec.PowerState = "Off" }, "spec.powerState: \"Off\" must be one of Running, Stopped, Paused"},
		{"bad reboot type", func(in *Instance) { in.Spec.Reboot = &RebootRequest{Type: "warm", ID: "1"} }, "spec.reboot.type"},
		{"reboot without id", func(in *Instance) { in.Spec.Reboot = &RebootRequest{Type: RebootSoft} }, "spec.reboot.id: required"},
		{"bad zone", func(in *Instance) { in.Spec.AvailabilityZone = "zone a" }, "spec.availabilityZone"},
		{"bad state", func(in *Instance) { in.Status.State = "RUNNING" }, "status.state"},
	}
	for _, tc := range cases {
		in := testInstance()
		tc.change(in)
		Default(in)
		checkCase(t, tc.name, Validate(in), tc.want)
	}
}

func TestInstanceUpdate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Instance)
		want   string
	}{
		{"volumes", func(in *Instance) { in.Spec.Volumes = []string{"data"} }, ""},
		{"power", func(in *Instance) { in.Spec.PowerState = PowerStopped }, ""},
		{"reboot", func(in *Instance) { in.Spec.Reboot = &RebootRequest{Type: RebootSoft, ID: "2"} }, ""},
		{"status", func(in *Instance) { in.Status.State = InstanceActive }, ""},
		{"flavor", func(in *Instance) { in.Spec.Flavor = "m1.large" }, "spec.flavor: field is immutable (was \"m1.tiny\"): resize is not supported"},
		{"image", func(in *Instance) { in.Spec.Image = "debian" }, "spec.image: field is immutable"},
		{"key pair", func(in *Instance) { in.Spec.KeyPair = "k" }, "spec.keyPair: field is immutable"},
		{"user data", func(in *Instance) { in.Spec.UserData = "x" }, "spec.userData: field is immutable"},
		{"networks", func(in *Instance) { in.Spec.Networks = []string{NetworkUser} }, "spec.networks: field is immutable"},
		{"zone", func(in *Instance) { in.Spec.AvailabilityZone = "z" }, "spec.availabilityZone: field is immutable"},
	}
	for _, tc := range cases {
		old := testInstance()
		Default(old)
		in := DeepCopy(old).(*Instance)
		tc.change(in)
		checkCase(t, tc.name, ValidateUpdate(old, in), tc.want)
	}
}

func TestFlavorValidation(t *testing.T) {
	cases := []struct {
		name string
		spec FlavorSpec
		want string
	}{
		{"tiny", FlavorSpec{VCPUs: 1, RAMMB: 512, DiskGB: 1}, ""},
		{"bounds", FlavorSpec{VCPUs: 128, RAMMB: 1 << 20, DiskGB: 65536}, ""},
		{"no disk", FlavorSpec{VCPUs: 1, RAMMB: 64}, ""},
		{"no vcpus", FlavorSpec{RAMMB: 512}, "spec.vcpus: 0 must be between 1 and 128"},
		{"too many vcpus", FlavorSpec{VCPUs: 129, RAMMB: 512}, "spec.vcpus: 129"},
		{"little ram", FlavorSpec{VCPUs: 1, RAMMB: 63}, "spec.ramMB: 63 must be between 64 and 1048576"},
		{"huge disk", FlavorSpec{VCPUs: 1, RAMMB: 64, DiskGB: 65537}, "spec.diskGB: 65537"},
		{"negative disk", FlavorSpec{VCPUs: 1, RAMMB: 64, DiskGB: -1}, "spec.diskGB: -1"},
	}
	for _, tc := range cases {
		f := &Flavor{Spec: tc.spec}
		f.Name = "m1.custom"
		Default(f)
		checkCase(t, tc.name, Validate(f), tc.want)
	}
	for name, spec := range DefaultFlavors {
		f := &Flavor{Spec: spec}
		f.Name = name
		checkCase(t, name, Validate(f), "")
	}
	old := &Flavor{Spec: DefaultFlavors["m1.tiny"]}
	old.Name = "m1.tiny"
	f := DeepCopy(old).(*Flavor)
	f.Spec.RAMMB = 1024
	checkCase(t, "flavor update", ValidateUpdate(old, f), "spec: field is immutable (was vcpus=1 ramMB=512 diskGB=1)")
	f = DeepCopy(old).(*Flavor)
	f.Labels = map[string]string{"tier": "small"}
	checkCase(t, "flavor label update", ValidateUpdate(old, f), "")
}

func TestImageValidation(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Image)
		want   string
	}{
		{"disk", func(*Image) {}, ""},
		{"kernel", func(i *Image) { i.Spec = ImageSpec{Type: ImageTypeKernel, Cmdline: "console=ttyS0"} }, ""},
		{"no type", func(i *Image) { i.Spec.Type = "" }, "spec.type: required (disk or kernel)"},
		{"bad type", func(i *Image) { i.Spec.Type = "iso" }, "spec.type: \"iso\" must be one of disk, kernel"},
		{"cmdline on a disk", func(i *Image) { i.Spec.Cmdline = "quiet" }, "spec.cmdline: only a kernel image"},
		{"bad phase", func(i *Image) { i.Status.Phase = "Ready" }, "status.phase"},
		{"bad role", func(i *Image) { i.Status.Files = []ImageFile{{Role: "iso"}} }, "status.files[0].role"},
		{"role twice", func(i *Image) { i.Status.Files = []ImageFile{{Role: "disk"}, {Role: "disk"}} }, "status.files[1].role: \"disk\" is listed twice"},
		{"files", func(i *Image) {
			i.Status = ImageStatus{Phase: ImageActive, Size: 3, Files: []ImageFile{{Role: "disk", Format: "qcow2", Size: 3, SHA256: "ab"}}}
		}, ""},
	}
	for _, tc := range cases {
		img := &Image{Spec: ImageSpec{Type: ImageTypeDisk}}
		img.Name = "debian-12.1"
		tc.change(img)
		Default(img)
		checkCase(t, tc.name, Validate(img), tc.want)
	}
	old := &Image{Spec: ImageSpec{Type: ImageTypeKernel}}
	old.Name = "k"
	img := DeepCopy(old).(*Image)
	img.Spec.Type = ImageTypeDisk
	checkCase(t, "image type update", ValidateUpdate(old, img), "spec.type: field is immutable")
}

func TestVMVolumeValidation(t *testing.T) {
	cases := []struct {
		name   string
		change func(*VMVolume)
		want   string
	}{
		{"valid", func(*VMVolume) {}, ""},
		{"largest", func(v *VMVolume) { v.Spec.SizeGB = 16384 }, ""},
		{"no size", func(v *VMVolume) { v.Spec.SizeGB = 0 }, "spec.sizeGB: 0 must be between 1 and 16384"},
		{"too big", func(v *VMVolume) { v.Spec.SizeGB = 16385 }, "spec.sizeGB: 16385"},
		{"bad phase", func(v *VMVolume) { v.Status.Phase = "attached" }, "status.phase: \"attached\" must be one of available, in-use, error"},
		{"attachment without instance", func(v *VMVolume) { v.Status.Attachments = []VolumeAttachment{{}} }, "status.attachments[0].instance: required"},
		{"dotted name", func(v *VMVolume) { v.Name = "a.b" }, "metadata.name"},
	}
	for _, tc := range cases {
		v := &VMVolume{Spec: VMVolumeSpec{SizeGB: 1}}
		v.Name, v.Namespace = "data", "default"
		tc.change(v)
		Default(v)
		checkCase(t, tc.name, Validate(v), tc.want)
	}
	v := &VMVolume{Spec: VMVolumeSpec{SizeGB: 1}}
	Default(v)
	if v.Status.Phase != VolumeAvailable || v.Kind != "Volume" {
		t.Fatalf("volume defaults: %+v %+v", v.TypeMeta, v.Status)
	}
	grown := DeepCopy(v).(*VMVolume)
	grown.Spec.SizeGB = 2
	checkCase(t, "resize", ValidateUpdate(v, grown), "spec.sizeGB: field is immutable (was 1): volumes cannot be resized")
	inUse := DeepCopy(v).(*VMVolume)
	inUse.Status = VMVolumeStatus{Phase: VolumeInUse, Attachments: []VolumeAttachment{{Instance: "web-1"}}}
	checkCase(t, "status update", ValidateUpdate(v, inUse), "")
}

func TestKeyPair(t *testing.T) {
	kp := &KeyPair{Spec: KeyPairSpec{PublicKey: testPublicKey}}
	kp.Name, kp.Namespace = "my.key", "default"
	Default(kp)
	if kp.Status.Type != "ssh-ed25519" || !strings.HasPrefix(kp.Status.Fingerprint, "SHA256:") {
		t.Fatalf("status not derived from the key: %+v", kp.Status)
	}
	checkCase(t, "valid", Validate(kp), "")
	forged := DeepCopy(kp).(*KeyPair)
	forged.Status.Fingerprint = "SHA256:forged"
	Default(forged)
	if forged.Status != kp.Status {
		t.Fatalf("Default kept a forged fingerprint: %+v", forged.Status)
	}

	cases := []struct{ name, key, want string }{
		{"empty", "", "spec.publicKey: required"},
		{"garbage", "not a key", "spec.publicKey: not an SSH public key in authorized_keys form"},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n", "spec.publicKey: not an SSH public key"},
		{"two keys", testPublicKey + "\n" + testPublicKey + "\n", "spec.publicKey: holds more than one key"},
		{"options", `from="10.0.0.1" ` + testPublicKey, ""},
		{"trailing newline", testPublicKey + "\n", ""},
	}
	for _, tc := range cases {
		k := &KeyPair{Spec: KeyPairSpec{PublicKey: tc.key}}
		k.Name, k.Namespace = "k", "default"
		Default(k)
		checkCase(t, tc.name, Validate(k), tc.want)
	}
	changed := DeepCopy(kp).(*KeyPair)
	changed.Spec.PublicKey = strings.Replace(testPublicKey, "user@host", "other@host", 1)
	checkCase(t, "key update", ValidateUpdate(kp, changed), "spec.publicKey: field is immutable")
}

func TestPodRuntimeClass(t *testing.T) {
	for _, tc := range []struct{ class, want string }{
		{"", ""},
		{RuntimeClassVM, ""},
		{"kata", "spec.runtimeClassName: \"kata\" is not a runtime class"},
	} {
		p := &Pod{Spec: PodSpec{RuntimeClassName: tc.class, Containers: []Container{{Name: "vm", Image: "x"}}}}
		p.Name, p.Namespace = "vm-a", "default"
		Default(p)
		checkCase(t, "runtimeClassName "+tc.class, Validate(p), tc.want)
	}
}

func TestComputeFields(t *testing.T) {
	in := testInstance()
	in.Status.State, in.Status.NodeName = InstanceActive, "n1"
	f := FieldsOf(in)
	if f["status.state"] != InstanceActive || f["status.nodeName"] != "n1" || f["spec.image"] != "cirros" {
		t.Fatalf("instance fields: %v", f)
	}
	sel, err := ParseFieldSelector("status.phase=in-use")
	if err != nil {
		t.Fatal(err)
	}
	v := &VMVolume{Status: VMVolumeStatus{Phase: VolumeInUse}}
	if !sel.Matches(FieldsOf(v)) {
		t.Fatalf("volume fields: %v", FieldsOf(v))
	}
}
