package containerdriver

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/cloudbox/cloudbox/cloud/agent"
)

var _ agent.PodDialer = (*Driver)(nil)

// DialPod connects to address from inside the pod's network namespace, for the
// agent's httpGet and tcpSocket probes. A socket belongs to the namespace it was
// created in, so the thread enters the pod's namespace only for socket creation and
// connect, and goes back before it is used for anything else.
func (d *Driver) DialPod(ctx context.Context, podUID, network, address string) (net.Conn, error) {
	p, err := d.ctrs.GetPod(podUID)
	if err != nil {
		return nil, err
	}
	var dialer net.Dialer
	if p.HostNetwork || p.NetNSPath == "" {
		return dialer.DialContext(ctx, network, address)
	}
	target, err := os.Open(p.NetNSPath)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter pod %s network: %w", podUID, err)
	}
	conn, dialErr := dialer.DialContext(ctx, network, address)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the pod's namespace: leave it locked so the runtime
		// ends it with this goroutine instead of reusing it.
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("leave pod %s network: %w", podUID, err)
	}
	runtime.UnlockOSThread()
	return conn, dialErr
}
