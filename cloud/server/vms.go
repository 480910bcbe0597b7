package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/agent"
	"github.com/cloudbox/cloudbox/cloud/agent/vmdriver"
	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/hypervisor"
	"github.com/cloudbox/cloudbox/internal/atomicfile"
)

// VM accelerator settings of Config.VMAccel.
const (
	VMAccelOff  = "off"
	VMAccelAuto = "auto"
)

// vmsEnabled says whether this node runs VMs: VMAccel is auto, kvm or tcg.
func (n *Node) vmsEnabled() bool {
	return n.cfg.VMAccel != "" && n.cfg.VMAccel != VMAccelOff
}

// checkVMConfig validates the VM settings before anything starts.
func checkVMConfig(cfg *Config) error {
	switch cfg.VMAccel {
	case "", VMAccelOff, VMAccelAuto, string(hypervisor.KVM), string(hypervisor.TCG):
	default:
		return fmt.Errorf("--vm-accel %q: must be auto, kvm, tcg or off", cfg.VMAccel)
	}
	if cfg.VMProbeKernel != "" {
		if err := hypervisor.CheckKernel(cfg.VMProbeKernel); err != nil {
			return fmt.Errorf("--vm-probe-kernel: %w", err)
		}
	}
	return nil
}

// startVMDriver makes the node's VM driver and its reconciler: it picks the
// accelerator (a real probe with auto, remembered for this boot of the host) and
// returns the node labels that say the node runs VMs. With VMs off it makes none.
// With auto and no QEMU installed, the node runs no VMs and says why in the log.
func (n *Node) startVMDriver(ctx context.Context, network agent.PodNetwork) (map[string]string, error) {
	if !n.vmsEnabled() {
		return nil, nil
	}
	qemu := n.cfg.QEMU
	if qemu == "" {
		qemu = hypervisor.DefaultQEMU
	}
	if _, err := exec.LookPath(qemu); err != nil {
		if n.cfg.VMAccel == VMAccelAuto {
			n.log.Warn("this node runs no VMs: QEMU is not installed (apt-get install qemu-system-x86 qemu-utils)", zap.String("qemu", qemu))
			return nil, nil
		}
		return nil, fmt.Errorf("--vm-accel %s: %w", n.cfg.VMAccel, err)
	}
	stateDir := filepath.Join(n.cfg.DataDir, "agent", "vm")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	accel, reason, err := n.probeAccel(ctx, qemu, stateDir)
	if err != nil {
		return nil, err
	}
	n.log.Info("VM accelerator chosen", zap.String("accel", string(accel)), zap.String("reason", reason))
	d, err := vmdriver.New(vmdriver.Config{Client: n.client, NodeName: n.name, StateDir: stateDir, QEMU: qemu,
		Accel: accel, Network: network, CgroupParent: n.cfg.CgroupParent, Logger: n.cfg.Logger})
	if err != nil {
		return nil, err
	}
	n.vms, n.vmReconciler = d, vmdriver.NewReconciler(d, n.informers)
	return map[string]string{api.LabelVMNode: "true", api.LabelVMAccel: string(accel)}, nil
}

// accelChoice is what the probe found, kept for the rest of the host's boot: the
// probe boots a guest, which takes seconds under TCG.
type accelChoice struct {
	Key    string `json:"key"`
	Accel  string `json:"accel"`
	Reason string `json:"reason"`
}

func (n *Node) probeAccel(ctx context.Context, qemu, stateDir string) (hypervisor.Accel, string, error) {
	kernel := n.cfg.VMProbeKernel
	if kernel == "" {
		kernel = newestBootKernel()
	}
	want := n.cfg.VMAccel
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	key := strings.Join([]string{strings.TrimSpace(string(bootID)), want, qemu, kernel}, "|")
	path := filepath.Join(stateDir, "accel.json")
	if b, err := os.ReadFile(path); err == nil {
		var c accelChoice
		if json.Unmarshal(b, &c) == nil && c.Key == key {
			return hypervisor.Accel(c.Accel), c.Reason + " (probed earlier in this boot)", nil
		}
	}
	accel, reason, err := hypervisor.ProbeAccel(ctx, qemu, want, kernel)
	if err != nil {
		return "", "", err
	}
	if b, err := json.Marshal(accelChoice{Key: key, Accel: string(accel), Reason: reason}); err == nil {
		_ = atomicfile.WriteFile(path, b, 0o600)
	}
	return accel, reason, nil
}

// newestBootKernel is the host's newest /boot/vmlinuz-*, or "".
func newestBootKernel() string {
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Strings(ks)
	if len(ks) == 0 {
		return ""
	}
	return ks[len(ks)-1]
}

// vmAgentConfig adds the VM driver to an agent's configuration.
func vmAgentConfig(cfg *agent.Config, d *vmdriver.Driver, labels map[string]string) {
	if d == nil {
		return
	}
	cfg.Runtimes = map[string]agent.Driver{api.RuntimeClassVM: d}
	merged := map[string]string{}
	for k, v := range cfg.Labels {
		merged[k] = v
	}
	for k, v := range labels {
		merged[k] = v
	}
	cfg.Labels = merged
}
