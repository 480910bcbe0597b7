package agent

import (
	"context"
	"errors"
	"net"
)

// fixedIPNetwork is a pod network that gives every pod the same address and attaches
// nothing: the agent only reads a pod's IP and resolv.conf from it.
type fixedIPNetwork struct{ ip string }

var _ PodNetwork = fixedIPNetwork{}

func (n fixedIPNetwork) Setup(context.Context, string, string) (net.IP, error) {
	return net.ParseIP(n.ip), nil
}
func (fixedIPNetwork) Teardown(context.Context, string) error { return nil }
func (fixedIPNetwork) SetupTap(context.Context, string, net.IP) (*Tap, error) {
	return nil, errors.New("fixedIPNetwork has no taps")
}
func (fixedIPNetwork) TeardownTap(context.Context, string) error { return nil }
func (n fixedIPNetwork) PodIP(string) string                     { return n.ip }
func (fixedIPNetwork) ResolvConf(string) []byte                  { return nil }
