package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// The compute kinds' tables show what `openstack server list` and friends show, in
// kubectl's shape.
func init() {
	addTable(tableOf[*api.Instance]{
		headers: []string{"NAME", "STATUS", "ADDRESS", "FLAVOR", "IMAGE", "NODE", "AGE"},
		row: func(in *api.Instance) []string {
			return []string{in.Name, instanceStatus(in), orNone(in.Status.Address), in.Spec.Flavor, in.Spec.Image,
				orNone(in.Status.NodeName), age(in.CreationTimestamp)}
		},
		wide: []string{"ACCEL", "PID", "POWER"},
		wideRow: func(in *api.Instance) []string {
			pid := "<none>"
			if in.Status.PID != 0 {
				pid = fmt.Sprint(in.Status.PID)
			}
			return []string{orNone(in.Status.Accel), pid, in.Spec.PowerState}
		},
	})
	addTable(tableOf[*api.Flavor]{
		headers: []string{"NAME", "VCPUS", "RAM", "DISK", "AGE"},
		row: func(f *api.Flavor) []string {
			return []string{f.Name, fmt.Sprint(f.Spec.VCPUs), fmt.Sprintf("%dMi", f.Spec.RAMMB), fmt.Sprintf("%dGi", f.Spec.DiskGB), age(f.CreationTimestamp)}
		},
	})
	addTable(tableOf[*api.Image]{
		headers: []string{"NAME", "TYPE", "FORMAT", "SIZE", "STATUS", "AGE"},
		row: func(img *api.Image) []string {
			return []string{img.Name, img.Spec.Type, imageFormat(img), humanBytes(img.Status.Size), orNone(img.Status.Phase), age(img.CreationTimestamp)}
		},
		wide: []string{"SHA256", "CMDLINE"},
		wideRow: func(img *api.Image) []string {
			sha := "<none>"
			if len(img.Status.Files) > 0 {
				sha = shortID(img.Status.Files[0].SHA256)
			}
			return []string{sha, orNone(img.Spec.Cmdline)}
		},
	})
	addTable(tableOf[*api.VMVolume]{
		headers: []string{"NAME", "SIZE", "STATUS", "ATTACHED-TO", "AGE"},
		row: func(v *api.VMVolume) []string {
			return []string{v.Name, fmt.Sprintf("%dGi", v.Spec.SizeGB), orNone(v.Status.Phase), volumeAttachments(v), age(v.CreationTimestamp)}
		},
		wide: []string{"NODE", "DESCRIPTION"},
		wideRow: func(v *api.VMVolume) []string {
			return []string{orNone(v.Status.NodeName), orNone(v.Spec.Description)}
		},
	})
	addTable(tableOf[*api.KeyPair]{
		headers: []string{"NAME", "TYPE", "FINGERPRINT", "AGE"},
		row: func(k *api.KeyPair) []string {
			return []string{k.Name, orNone(k.Status.Type), orNone(k.Status.Fingerprint), age(k.CreationTimestamp)}
		},
	})
}

// instanceStatus is the STATUS column: Nova's state, BUILD until the node says more,
// DELETING once deletion started.
func instanceStatus(in *api.Instance) string {
	if in.DeletionTimestamp != nil {
		return "DELETING"
	}
	if in.Status.State == "" {
		return api.InstanceBuild
	}
	return in.Status.State
}

// imageFormat is the disk's format, or "kernel" / "kernel+initrd".
func imageFormat(img *api.Image) string {
	var roles []string
	for _, f := range img.Status.Files {
		if f.Role == api.ImageFileDisk {
			return orNone(f.Format)
		}
		roles = append(roles, f.Role)
	}
	if len(roles) == 0 {
		return "<none>"
	}
	return strings.Join(roles, "+")
}

func volumeAttachments(v *api.VMVolume) string {
	names := make([]string, len(v.Status.Attachments))
	for i, a := range v.Status.Attachments {
		names[i] = a.Instance
	}
	if len(names) == 0 {
		return "<none>"
	}
	return strings.Join(names, ",")
}

func describeInstance(w io.Writer, in *api.Instance) {
	s, st := &in.Spec, &in.Status
	field(w, "Status", instanceStatus(in))
	if st.Reason != "" || st.Message != "" {
		field(w, "Reason", strings.TrimSpace(st.Reason+": "+st.Message))
	}
	field(w, "Power State", s.PowerState)
	field(w, "Flavor", flavorLine(s.Flavor, st.Flavor))
	field(w, "Image", s.Image)
	field(w, "Key Pair", orNone(s.KeyPair))
	field(w, "Networks", strings.Join(s.Networks, ","))
	if s.AvailabilityZone != "" {
		field(w, "Zone", s.AvailabilityZone)
	}
	field(w, "Node", orNone(st.NodeName))
	field(w, "Address", orNone(st.Address))
	if st.MAC != "" {
		field(w, "MAC", st.MAC)
	}
	if st.PID != 0 {
		field(w, "QEMU", fmt.Sprintf("pid %d, %s", st.PID, orNone(st.Accel)))
	}
	if st.LaunchedAt != nil {
		field(w, "Launched", st.LaunchedAt.Format("Mon, 02 Jan 2006 15:04:05 -0700")+" ("+age(st.LaunchedAt)+" ago)")
	}
	if st.ConsoleLog != "" {
		field(w, "Console Log", st.ConsoleLog)
	}
	if r := s.Reboot; r != nil {
		done := "pending"
		if st.RebootID == r.ID {
			done = "done"
		}
		field(w, "Reboot", fmt.Sprintf("%s (%s, id %s)", r.Type, done, r.ID))
	}
	if s.UserData != "" {
		field(w, "User Data", fmt.Sprintf("%d bytes", len(s.UserData)))
	}
	fmt.Fprintln(w, "Volumes:")
	if len(s.Volumes) == 0 {
		fmt.Fprintln(w, "  <none>")
	}
	plugged := map[string]string{}
	for _, v := range st.Volumes {
		plugged[v.Name] = v.Device
	}
	for _, v := range s.Volumes {
		if dev, ok := plugged[v]; ok {
			fmt.Fprintf(w, "  %s: attached (device %s)\n", v, orNone(dev))
		} else {
			fmt.Fprintf(w, "  %s: attaching\n", v)
		}
	}
	for _, v := range st.Volumes {
		if !slices.Contains(s.Volumes, v.Name) {
			fmt.Fprintf(w, "  %s: detaching (device %s)\n", v.Name, orNone(v.Device))
		}
	}
}

func flavorLine(name string, spec *api.FlavorSpec) string {
	if spec == nil {
		return name
	}
	return fmt.Sprintf("%s (%d vCPU, %d MiB RAM, %d GiB disk)", name, spec.VCPUs, spec.RAMMB, spec.DiskGB)
}

func describeImage(w io.Writer, img *api.Image) {
	field(w, "Type", img.Spec.Type)
	if img.Spec.Cmdline != "" {
		field(w, "Cmdline", img.Spec.Cmdline)
	}
	field(w, "Status", orNone(img.Status.Phase))
	field(w, "Size", humanBytes(img.Status.Size))
	fmt.Fprintln(w, "Files:")
	if len(img.Status.Files) == 0 {
		fmt.Fprintln(w, "  <none>")
	}
	for _, f := range img.Status.Files {
		format := ""
		if f.Format != "" {
			format = f.Format + ", "
		}
		fmt.Fprintf(w, "  %s: %s%s, sha256 %s\n", f.Role, format, humanBytes(f.Size), f.SHA256)
	}
}

func describeVMVolume(w io.Writer, v *api.VMVolume) {
	field(w, "Size", fmt.Sprintf("%d GiB", v.Spec.SizeGB))
	if v.Spec.Description != "" {
		field(w, "Description", v.Spec.Description)
	}
	field(w, "Status", orNone(v.Status.Phase))
	field(w, "Node", orNone(v.Status.NodeName))
	var lines []string
	for _, a := range v.Status.Attachments {
		lines = append(lines, fmt.Sprintf("%s (device %s)", a.Instance, orNone(a.Device)))
	}
	field(w, "Attached To", strings.Join(lines, "\n"))
}

func describeKeyPair(w io.Writer, k *api.KeyPair) {
	field(w, "Type", k.Status.Type)
	field(w, "Fingerprint", k.Status.Fingerprint)
	field(w, "Public Key", strings.TrimSpace(k.Spec.PublicKey))
}

func describeFlavor(w io.Writer, f *api.Flavor) {
	field(w, "VCPUs", fmt.Sprint(f.Spec.VCPUs))
	field(w, "RAM", fmt.Sprintf("%d MiB", f.Spec.RAMMB))
	field(w, "Disk", fmt.Sprintf("%d GiB", f.Spec.DiskGB))
}
