package api

import (
	"bytes"
	"fmt"
	"slices"

	"golang.org/x/crypto/ssh"
)

// Limits of the compute kinds. An instance's name leaves room for its launcher pod's
// "vm-" prefix within a DNS label; the flavor and volume bounds are Nova's and
// Cinder's orders of magnitude, wide enough for any real machine.
const (
	MaxInstanceNameLength = 63 - len(launcherPodPrefix)
	MaxUserDataBytes      = 64 << 10

	MinFlavorVCPUs, MaxFlavorVCPUs   = 1, 128
	MinFlavorRAMMB, MaxFlavorRAMMB   = 64, 1 << 20
	MinFlavorDiskGB, MaxFlavorDiskGB = 0, 65536
	MinVolumeSizeGB, MaxVolumeSizeGB = 1, 16384
)

// computeHooks fills the defaults, validation and field hooks of the compute kinds;
// compute.go's init calls it as it registers them.
func computeHooks(k *KindInfo) *KindInfo {
	switch k.Kind {
	case "Instance":
		k.Default, k.Validate, k.ValidateUpdate, k.Fields = defaultInstance, validateInstance, validateInstanceUpdate, instanceFields
	case "Flavor":
		k.Validate, k.ValidateUpdate = validateFlavor, validateFlavorUpdate
	case "Image":
		k.Validate, k.ValidateUpdate, k.Fields = validateImage, validateImageUpdate, imageFields
	case "Volume":
		k.Default, k.Validate, k.ValidateUpdate, k.Fields = defaultVMVolume, validateVMVolume, validateVMVolumeUpdate, vmVolumeFields
	case "KeyPair":
		k.Default, k.Validate, k.ValidateUpdate = defaultKeyPair, validateKeyPair, validateKeyPairUpdate
	}
	return k
}

func defaultInstance(obj Object) {
	s := &obj.(*Instance).Spec
	if len(s.Networks) == 0 {
		s.Networks = []string{NetworkPod}
	}
	if s.PowerState == "" {
		s.PowerState = PowerRunning
	}
}

func validateInstance(obj Object) FieldErrors {
	in := obj.(*Instance)
	s := &in.Spec
	var errs FieldErrors
	if n := len(in.Name); n > MaxInstanceNameLength {
		errs.addf("metadata.name", "must be at most %d characters (its launcher pod is %q), not %d", MaxInstanceNameLength, InstancePodName("NAME"), n)
	}
	requiredName := func(field, v string) {
		if v == "" {
			errs.add(field, "required")
		} else {
			errs.check(field, checkDNSSubdomain(v))
		}
	}
	requiredName("spec.flavor", s.Flavor)
	requiredName("spec.image", s.Image)
	if s.KeyPair != "" {
		errs.check("spec.keyPair", checkDNSSubdomain(s.KeyPair))
	}
	if n := len(s.UserData); n > MaxUserDataBytes {
		errs.addf("spec.userData", "is %d bytes, must be at most %d (64 KiB)", n, MaxUserDataBytes)
	}
	seen := map[string]bool{}
	for i, v := range s.Volumes {
		p := index("spec.volumes", i)
		switch {
		case v == "":
			errs.add(p, "required")
		case seen[v]:
			errs.addf(p, "volume %q is listed twice", v)
		default:
			errs.check(p, checkDNSLabel(v))
		}
		seen[v] = true
	}
	if len(s.Networks) > 1 {
		errs.addf("spec.networks", "at most one network is supported, got %d", len(s.Networks))
	}
	for i, n := range s.Networks {
		if n != NetworkPod && n != NetworkUser {
			errs.add(index("spec.networks", i), oneOf(n, NetworkPod, NetworkUser))
		}
	}
	if s.AvailabilityZone != "" {
		errs.check("spec.availabilityZone", checkLabelValue(s.AvailabilityZone))
	}
	switch s.PowerState {
	case PowerRunning, PowerStopped, PowerPaused:
	default:
		errs.add("spec.powerState", oneOf(s.PowerState, PowerRunning, PowerStopped, PowerPaused))
	}
	if r := s.Reboot; r != nil {
		if r.Type != RebootSoft && r.Type != RebootHard {
			errs.add("spec.reboot.type", oneOf(r.Type, RebootSoft, RebootHard))
		}
		if r.ID == "" {
			errs.add("spec.reboot.id", "required (a new id asks for another reboot)")
		}
	}
	switch st := in.Status.State; st {
	case "", InstanceBuild, InstanceActive, InstanceShutoff, InstancePaused, InstanceReboot, InstanceError:
	default:
		errs.add("status.state", oneOf(st, InstanceBuild, InstanceActive, InstanceShutoff, InstancePaused, InstanceReboot, InstanceError))
	}
	return errs
}

// validateInstanceUpdate keeps what the VM was built from: changing it would need a
// rebuild or a resize, which cloudbox does not do. Volumes, the power state and
// reboots are what a running VM may be asked for.
func validateInstanceUpdate(oldObj, newObj Object) FieldErrors {
	o, n := &oldObj.(*Instance).Spec, &newObj.(*Instance).Spec
	var errs FieldErrors
	if n.Flavor != o.Flavor {
		errs.addf("spec.flavor", "field is immutable (was %q): resize is not supported; create a new instance", o.Flavor)
	}
	if n.Image != o.Image {
		errs.addf("spec.image", "field is immutable (was %q): rebuild is not supported; create a new instance", o.Image)
	}
	if n.KeyPair != o.KeyPair {
		errs.immutable("spec.keyPair", o.KeyPair)
	}
	if n.UserData != o.UserData {
		errs.add("spec.userData", "field is immutable (cloud-init read it at the first boot)")
	}
	if !slices.Equal(n.Networks, o.Networks) {
		errs.immutable("spec.networks", fmt.Sprint(o.Networks))
	}
	if n.AvailabilityZone != o.AvailabilityZone {
		errs.immutable("spec.availabilityZone", o.AvailabilityZone)
	}
	return errs
}

func instanceFields(obj Object) map[string]string {
	in := obj.(*Instance)
	return map[string]string{
		"spec.flavor": in.Spec.Flavor, "spec.image": in.Spec.Image,
		"status.state": in.Status.State, "status.nodeName": in.Status.NodeName,
	}
}

func validateFlavor(obj Object) FieldErrors {
	return validateFlavorSpec("spec", &obj.(*Flavor).Spec)
}

func validateFlavorSpec(p string, s *FlavorSpec) FieldErrors {
	var errs FieldErrors
	errs.check(child(p, "vcpus"), checkRange(s.VCPUs, MinFlavorVCPUs, MaxFlavorVCPUs))
	errs.check(child(p, "ramMB"), checkRange(s.RAMMB, MinFlavorRAMMB, MaxFlavorRAMMB))
	errs.check(child(p, "diskGB"), checkRange(s.DiskGB, MinFlavorDiskGB, MaxFlavorDiskGB))
	return errs
}

// validateFlavorUpdate keeps a flavor's size, as Nova does: instances record the
// flavor they were made with, and a flavor that changed under them would lie.
func validateFlavorUpdate(oldObj, newObj Object) FieldErrors {
	o, n := oldObj.(*Flavor), newObj.(*Flavor)
	var errs FieldErrors
	if n.Spec != o.Spec {
		errs.add("spec", fmt.Sprintf("field is immutable (was vcpus=%d ramMB=%d diskGB=%d): delete the flavor and create another", o.Spec.VCPUs, o.Spec.RAMMB, o.Spec.DiskGB))
	}
	return errs
}

func validateImage(obj Object) FieldErrors {
	img := obj.(*Image)
	var errs FieldErrors
	switch img.Spec.Type {
	case ImageTypeDisk:
		if img.Spec.Cmdline != "" {
			errs.addf("spec.cmdline", "only a %s image has a kernel command line", ImageTypeKernel)
		}
	case ImageTypeKernel:
	case "":
		errs.add("spec.type", "required ("+ImageTypeDisk+" or "+ImageTypeKernel+")")
	default:
		errs.add("spec.type", oneOf(img.Spec.Type, ImageTypeDisk, ImageTypeKernel))
	}
	switch ph := img.Status.Phase; ph {
	case "", ImagePending, ImageActive:
	default:
		errs.add("status.phase", oneOf(ph, ImagePending, ImageActive))
	}
	roles := map[string]bool{}
	for i, f := range img.Status.Files {
		p := index("status.files", i)
		switch f.Role {
		case ImageFileDisk, ImageFileKernel, ImageFileInitrd:
		default:
			errs.add(child(p, "role"), oneOf(f.Role, ImageFileDisk, ImageFileKernel, ImageFileInitrd))
		}
		if roles[f.Role] {
			errs.addf(child(p, "role"), "%q is listed twice", f.Role)
		}
		roles[f.Role] = true
		errs.check(child(p, "size"), checkNonNegative(f.Size))
	}
	return errs
}

// validateImageUpdate keeps the type: the files were checked against it.
func validateImageUpdate(oldObj, newObj Object) FieldErrors {
	o, n := oldObj.(*Image), newObj.(*Image)
	var errs FieldErrors
	if n.Spec.Type != o.Spec.Type {
		errs.immutable("spec.type", o.Spec.Type)
	}
	return errs
}

func imageFields(obj Object) map[string]string {
	img := obj.(*Image)
	return map[string]string{"spec.type": img.Spec.Type, "status.phase": img.Status.Phase}
}

func defaultVMVolume(obj Object) {
	if v := obj.(*VMVolume); v.Status.Phase == "" {
		v.Status.Phase = VolumeAvailable
	}
}

func validateVMVolume(obj Object) FieldErrors {
	v := obj.(*VMVolume)
	var errs FieldErrors
	errs.check("spec.sizeGB", checkRange(v.Spec.SizeGB, MinVolumeSizeGB, MaxVolumeSizeGB))
	switch ph := v.Status.Phase; ph {
	case "", VolumeAvailable, VolumeInUse, VolumeError:
	default:
		errs.add("status.phase", oneOf(ph, VolumeAvailable, VolumeInUse, VolumeError))
	}
	for i, a := range v.Status.Attachments {
		if a.Instance == "" {
			errs.add(child(index("status.attachments", i), "instance"), "required")
		}
	}
	return errs
}

// validateVMVolumeUpdate refuses a resize: the file on the node would not follow.
func validateVMVolumeUpdate(oldObj, newObj Object) FieldErrors {
	o, n := oldObj.(*VMVolume), newObj.(*VMVolume)
	var errs FieldErrors
	if n.Spec.SizeGB != o.Spec.SizeGB {
		errs.addf("spec.sizeGB", "field is immutable (was %d): volumes cannot be resized", o.Spec.SizeGB)
	}
	if n.Spec.Description != o.Spec.Description {
		errs.immutable("spec.description", o.Spec.Description)
	}
	return errs
}

func vmVolumeFields(obj Object) map[string]string {
	return map[string]string{"status.phase": obj.(*VMVolume).Status.Phase}
}

// defaultKeyPair derives the status from the key, overwriting whatever a client
// sent: both fields are facts about the key, not choices, so this stays idempotent.
func defaultKeyPair(obj Object) {
	kp := obj.(*KeyPair)
	if pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(kp.Spec.PublicKey)); err == nil {
		kp.Status.Type = pub.Type()
		kp.Status.Fingerprint = ssh.FingerprintSHA256(pub)
	}
}

func validateKeyPair(obj Object) FieldErrors {
	kp := obj.(*KeyPair)
	var errs FieldErrors
	switch _, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(kp.Spec.PublicKey)); {
	case kp.Spec.PublicKey == "":
		errs.add("spec.publicKey", "required (an authorized_keys line such as \"ssh-ed25519 AAAA... user@host\")")
	case err != nil:
		errs.addf("spec.publicKey", "not an SSH public key in authorized_keys form: %v", err)
	case len(bytes.TrimSpace(rest)) > 0:
		errs.add("spec.publicKey", "holds more than one key: a key pair has exactly one")
	}
	return errs
}

func validateKeyPairUpdate(oldObj, newObj Object) FieldErrors {
	o, n := oldObj.(*KeyPair), newObj.(*KeyPair)
	var errs FieldErrors
	if n.Spec.PublicKey != o.Spec.PublicKey {
		errs.add("spec.publicKey", "field is immutable: delete the key pair and import the new key")
	}
	return errs
}

func checkRange(n, lo, hi int) string {
	if n < lo || n > hi {
		return fmt.Sprintf("%d must be between %d and %d", n, lo, hi)
	}
	return ""
}
