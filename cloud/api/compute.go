package api

// The compute group is cloudbox's IaaS: virtual machines (Instance) made from an Image
// and a Flavor, with Volumes and KeyPairs, in the shape OpenStack users know. A running
// Instance is carried by a launcher pod (InstancePodName) whose runtimeClassName is
// RuntimeClassVM: the scheduler places it with the pods in one capacity model, and the
// node's agent runs it through its VM driver, as KubeVirt's virt-launcher does.

// ComputeGroup is the API group of the IaaS kinds.
const ComputeGroup = "compute"

// Instance is a virtual machine.
type Instance struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       InstanceSpec   `json:"spec"`
	Status     InstanceStatus `json:"status,omitempty"`
}

// InstanceSpec is what the user asks of a VM.
type InstanceSpec struct {
	// Flavor names a Flavor: vCPUs, memory and root disk size.
	Flavor string `json:"flavor"`
	// Image names an Image: a bootable disk, or a kernel and initrd.
	Image string `json:"image"`
	// KeyPair names a KeyPair in the namespace whose public key goes into the seed.
	KeyPair string `json:"keyPair,omitempty"`
	// UserData is handed to cloud-init as is (a #cloud-config or a script).
	UserData string `json:"userData,omitempty"`
	// Volumes names Volumes of the namespace to attach, in order; adding or removing
	// one while the VM runs hot-plugs or unplugs it.
	Volumes []string `json:"volumes,omitempty"`
	// Networks the VM is on: "pod" (the node's bridge, an address from the pod
	// network; the default) or "user" (QEMU user-mode NAT, nothing reaches it).
	Networks []string `json:"networks,omitempty"`
	// AvailabilityZone, if set, restricts the VM to nodes of that zone
	// (topology.kubernetes.io/zone).
	AvailabilityZone string `json:"availabilityZone,omitempty"`
	// PowerState is the wanted state: Running (default), Stopped or Paused.
	PowerState string `json:"powerState,omitempty"`
	// Reboot asks for a reboot; a new ID asks for another one. The node records the ID
	// it carried out in status.rebootID.
	Reboot *RebootRequest `json:"reboot,omitempty"`
}

// RebootRequest asks the node to reboot a running VM once.
type RebootRequest struct {
	// Type is soft (the guest reboots itself; hard after a timeout) or hard (reset).
	Type string `json:"type"`
	// ID tells one request from the next (the CLI uses a timestamp).
	ID string `json:"id"`
}

// InstanceStatus is what is known of a VM.
type InstanceStatus struct {
	// State is Nova's: BUILD, ACTIVE, SHUTOFF, PAUSED, REBOOT, ERROR.
	State string `json:"state,omitempty"`
	// Reason and Message explain State (why ERROR, why still BUILD).
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// NodeName is where the VM runs, and where its disk stays while it is stopped.
	NodeName string `json:"nodeName,omitempty"`
	// Address is the VM's address on the pod network; MAC its interface's.
	Address string `json:"address,omitempty"`
	MAC     string `json:"mac,omitempty"`
	// PID is the QEMU process on the node; Accel what it runs with (kvm or tcg).
	PID   int    `json:"pid,omitempty"`
	Accel string `json:"accel,omitempty"`
	// ConsoleLog is the serial console's log file on the node.
	ConsoleLog string `json:"consoleLog,omitempty"`
	// Flavor is the flavor as it was when the VM was created (as Nova embeds it).
	Flavor *FlavorSpec `json:"flavor,omitempty"`
	// Volumes are the volumes attached now, in the order they were plugged.
	Volumes []InstanceVolumeStatus `json:"volumes,omitempty"`
	// PowerState is what the node sees of the running VM: Running or Paused (empty
	// while no VM runs).
	PowerState string `json:"powerState,omitempty"`
	// RebootID is the last spec.reboot.id the node carried out.
	RebootID   string `json:"rebootID,omitempty"`
	LaunchedAt *Time  `json:"launchedAt,omitempty"`
}

// InstanceVolumeStatus is one volume plugged into a running VM.
type InstanceVolumeStatus struct {
	Name string `json:"name"`
	// Device is the disk's id in the VM (its virtio serial number).
	Device string `json:"device"`
}

// Instance states (Nova's vm_state and task_state in one), power states, reboot
// types, networks, and the launcher pod's runtime class.
const (
	InstanceBuild   = "BUILD"
	InstanceActive  = "ACTIVE"
	InstanceShutoff = "SHUTOFF"
	InstancePaused  = "PAUSED"
	InstanceReboot  = "REBOOT"
	InstanceError   = "ERROR"

	PowerRunning = "Running"
	PowerStopped = "Stopped"
	PowerPaused  = "Paused"

	RebootSoft = "soft"
	RebootHard = "hard"

	NetworkPod  = "pod"
	NetworkUser = "user"

	// VMCPUAllocationRatio is how many vCPUs share one CPU in the capacity model
	// (Nova's default): a launcher pod requests vCPUs/16 of a CPU, since an idle VM's
	// vCPUs cost little, and its QEMU gets the cpu.shares of that request.
	VMCPUAllocationRatio = 16

	// RuntimeClassVM is the runtimeClassName of instance launcher pods: the agent runs
	// them with its VM driver.
	RuntimeClassVM = "cloudbox-vm"
	// LabelInstance names the Instance on its launcher pod.
	LabelInstance = "compute.cloudbox.io/instance"
	// LabelVMNode marks the nodes whose agent runs VMs ("true"); launcher pods
	// select them.
	LabelVMNode = "compute.cloudbox.io/vm"
	// LabelVMAccel is the accelerator a VM node chose (kvm or tcg).
	LabelVMAccel = "compute.cloudbox.io/accel"
	// launcherPodPrefix starts a launcher pod's name.
	launcherPodPrefix = "vm-"
)

// InstancePodName is the name of the pod that carries the instance while it runs.
func InstancePodName(instance string) string { return launcherPodPrefix + instance }

// Flavor is a size of VM. Flavors are cluster-wide; m1.tiny to m1.large exist from
// the first start.
type Flavor struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       FlavorSpec `json:"spec"`
}

// FlavorSpec is a flavor's size.
type FlavorSpec struct {
	VCPUs  int `json:"vcpus"`
	RAMMB  int `json:"ramMB"`
	DiskGB int `json:"diskGB"`
}

// DefaultFlavors are created at the first start, as Nova's m1 flavors.
var DefaultFlavors = map[string]FlavorSpec{
	"m1.tiny":   {VCPUs: 1, RAMMB: 512, DiskGB: 1},
	"m1.small":  {VCPUs: 1, RAMMB: 2048, DiskGB: 20},
	"m1.medium": {VCPUs: 2, RAMMB: 4096, DiskGB: 40},
	"m1.large":  {VCPUs: 4, RAMMB: 8192, DiskGB: 80},
}

// Image is a VM image in the cluster's catalogue. It is created with its files in one
// multipart request (POST /apis/compute/v1/images/import), which the API server checks
// and keeps; nodes fetch them (GET .../images/NAME/files/ROLE) when a VM needs them.
type Image struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ImageSpec   `json:"spec"`
	Status     ImageStatus `json:"status,omitempty"`
}

// ImageSpec says what the image is.
type ImageSpec struct {
	// Type is disk (a bootable qcow2 or raw disk) or kernel (a kernel, an optional
	// initrd, and a command line).
	Type string `json:"type"`
	// Cmdline is the kernel command line of a kernel image.
	Cmdline string `json:"cmdline,omitempty"`
}

// ImageStatus describes the uploaded files.
type ImageStatus struct {
	// Phase is Pending until the image's files are uploaded and checked, then Active.
	Phase string      `json:"phase,omitempty"`
	Files []ImageFile `json:"files,omitempty"`
	// Size is the sum of the files' sizes.
	Size int64 `json:"size,omitempty"`
}

// ImageFile is one file of an image.
type ImageFile struct {
	// Role is disk, kernel or initrd.
	Role string `json:"role"`
	// Format is what the content is (qcow2 or raw for disks), found by reading it.
	Format string `json:"format,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Image types, file roles and phases.
const (
	ImageTypeDisk   = "disk"
	ImageTypeKernel = "kernel"

	ImageFileDisk   = "disk"
	ImageFileKernel = "kernel"
	ImageFileInitrd = "initrd"

	ImagePending = "Pending"
	ImageActive  = "Active"
)

// VMVolume (kind Volume) is a block device for VMs: a qcow2 file on the node where it is first
// attached, which stays there.
type VMVolume struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       VMVolumeSpec   `json:"spec"`
	Status     VMVolumeStatus `json:"status,omitempty"`
}

// VMVolumeSpec is a volume's size.
type VMVolumeSpec struct {
	SizeGB      int    `json:"sizeGB"`
	Description string `json:"description,omitempty"`
}

// VMVolumeStatus is Cinder's: available or in-use, with the attachments.
type VMVolumeStatus struct {
	Phase string `json:"phase,omitempty"`
	// NodeName is the node the volume's file lives on, once it has one.
	NodeName    string             `json:"nodeName,omitempty"`
	Attachments []VolumeAttachment `json:"attachments,omitempty"`
}

// VolumeAttachment is an instance a volume is plugged into.
type VolumeAttachment struct {
	Instance string `json:"instance"`
	Device   string `json:"device,omitempty"`
}

// Volume phases.
const (
	VolumeAvailable = "available"
	VolumeInUse     = "in-use"
	VolumeError     = "error"
)

// KeyPair is an SSH public key that VMs of the namespace can be given.
type KeyPair struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       KeyPairSpec   `json:"spec"`
	Status     KeyPairStatus `json:"status,omitempty"`
}

// KeyPairSpec holds the public key in authorized_keys form.
type KeyPairSpec struct {
	PublicKey string `json:"publicKey"`
}

// KeyPairStatus shows the key's type and SHA256 fingerprint (as ssh-keygen -l).
type KeyPairStatus struct {
	Type        string `json:"type,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

func init() {
	Register(computeHooks(&KindInfo{Kind: "Instance", Group: ComputeGroup, Version: "v1", Resource: "instances", Singular: "instance",
		ShortNames: []string{"vm", "vms", "server", "servers"}, Namespaced: true,
		New: func() Object { return &Instance{} },
	}))
	Register(computeHooks(&KindInfo{Kind: "Flavor", Group: ComputeGroup, Version: "v1", Resource: "flavors", Singular: "flavor",
		SubdomainNames: true,
		New:            func() Object { return &Flavor{} },
	}))
	Register(computeHooks(&KindInfo{Kind: "Image", Group: ComputeGroup, Version: "v1", Resource: "images", Singular: "image",
		ShortNames: []string{"vmimage", "vmimages"}, SubdomainNames: true,
		New: func() Object { return &Image{} },
	}))
	Register(computeHooks(&KindInfo{Kind: "Volume", Group: ComputeGroup, Version: "v1", Resource: "volumes", Singular: "volume",
		ShortNames: []string{"vol"}, Namespaced: true,
		New: func() Object { return &VMVolume{} },
	}))
	Register(computeHooks(&KindInfo{Kind: "KeyPair", Group: ComputeGroup, Version: "v1", Resource: "keypairs", Singular: "keypair",
		Namespaced: true, SubdomainNames: true,
		New: func() Object { return &KeyPair{} },
	}))
}
