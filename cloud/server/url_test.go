package server

import (
	"net"
	"testing"
)

// The admin config and the all-in-one node reach the API where it listens: loopback
// for a wildcard listener, the one address otherwise.
func TestLocalURL(t *testing.T) {
	for _, tc := range []struct {
		addr *net.TCPAddr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4zero, Port: 6443}, "https://127.0.0.1:6443"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 6443}, "https://127.0.0.1:6443"},
		{&net.TCPAddr{IP: net.ParseIP("10.199.0.1"), Port: 16443}, "https://10.199.0.1:16443"},
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}, "https://127.0.0.1:1"},
		{&net.TCPAddr{IP: net.ParseIP("fd00::1"), Port: 6443}, "https://[fd00::1]:6443"},
	} {
		if got := localURL(tc.addr); got != tc.want {
			t.Errorf("localURL(%v) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}
