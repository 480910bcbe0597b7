package firewall

import (
	"bytes"
	"fmt"
	"os"
)

const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// EnableIPForward turns on IPv4 forwarding (net.ipv4.ip_forward=1) in the
// network namespace of the calling OS thread, which pods need to reach
// anything beyond their node. It writes only when forwarding is off. Cleanup
// does not turn it off again: other software on the host may rely on it.
func EnableIPForward() error {
	cur, err := os.ReadFile(ipForwardPath)
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	if string(bytes.TrimSpace(cur)) == "1" {
		return nil
	}
	if err := os.WriteFile(ipForwardPath, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("firewall: enable ip forwarding: %w", err)
	}
	return nil
}
