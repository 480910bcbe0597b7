package hypervisor

import (
	"context"
	"net"
	"path/filepath"
)

// DialConsole connects to the VM's serial console for an interactive session: what is
// written goes to the guest's ttyS0, and the guest's output comes back (it is also in
// ConsoleLog, whether or not anyone is connected). QEMU serves one console client at a
// time: a second connection is accepted by the kernel but sees nothing until the first
// one closes.
func (v *VM) DialConsole(ctx context.Context) (net.Conn, error) {
	if v.exited() {
		return nil, ErrNotRunning
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", filepath.Join(v.dir, consoleSocket))
}
