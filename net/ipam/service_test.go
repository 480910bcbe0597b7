package ipam

import (
	"errors"
	"net"
	"reflect"
	"testing"
)

func TestServiceIPs(t *testing.T) {
	s, err := NewServiceIPs(DefaultServiceCIDR)
	if err != nil {
		t.Fatal(err)
	}
	k := net.IPv4(10, 96, 0, 1).To4()
	if !s.KubernetesIP().Equal(k) {
		t.Fatalf("KubernetesIP = %s", s.KubernetesIP())
	}
	a, err := s.Allocate("default/a")
	if err != nil || !a.Equal(net.IPv4(10, 96, 0, 2)) {
		t.Fatalf("first Allocate = %s, %v; want 10.96.0.2 (.1 is kept)", a, err)
	}
	if again, _ := s.Allocate("default/a"); !again.Equal(a) {
		t.Fatalf("Allocate not idempotent: %s then %s", a, again)
	}
	if err := s.Reserve("default/kubernetes", k); err != nil {
		t.Fatalf("Reserve kubernetes IP: %v", err)
	}
	tests := []struct {
		owner string
		ip    net.IP
		want  error
	}{
		{"default/b", net.IPv4(10, 96, 0, 2), ErrConflict},
		{"default/b", net.IPv4(10, 97, 0, 2), ErrInvalid},
		{"default/b", net.IPv4(10, 96, 0, 0), ErrInvalid},
		{"default/b", net.IPv4(10, 96, 255, 255), ErrInvalid},
		{"default/b", nil, ErrInvalid},
		{"default/b", net.IPv4(10, 96, 3, 4), nil},
		{"default/b", net.IPv4(10, 96, 3, 5), nil}, // moves
		{"default/a", net.IPv4(10, 96, 0, 2), nil}, // already its own
	}
	for _, tt := range tests {
		if err := s.Reserve(tt.owner, tt.ip); !errors.Is(err, tt.want) {
			t.Errorf("Reserve(%q, %s) = %v, want %v", tt.owner, tt.ip, err, tt.want)
		}
	}
	if got, _ := s.Lookup("default/b"); !got.Equal(net.IPv4(10, 96, 3, 5)) {
		t.Errorf("default/b = %s after moving", got)
	}
	if _, err := s.Allocate("x/y"); err != nil {
		t.Fatal(err)
	}
	s.Release("default/a")
	if _, ok := s.Lookup("default/a"); ok {
		t.Error("default/a still allocated")
	}

	// A restarted API server restores from the Services it stores.
	r, _ := NewServiceIPs(DefaultServiceCIDR)
	released := r.Restore(map[string]net.IP{
		"default/kubernetes": k,
		"default/b":          net.IPv4(10, 96, 3, 5),
		"default/headless":   nil,
	})
	if len(released) != 0 {
		t.Errorf("released %v", released)
	}
	if got, _ := r.Allocate("new/svc"); !got.Equal(net.IPv4(10, 96, 0, 2)) {
		t.Errorf("after restore Allocate = %s, want 10.96.0.2", got)
	}
	if err := r.Reserve("other", net.IPv4(10, 96, 3, 5)); !errors.Is(err, ErrConflict) {
		t.Errorf("restored address reserved twice: %v", err)
	}
}

func TestServiceIPsExhausted(t *testing.T) {
	s, err := NewServiceIPs("10.96.0.0/29") // .2 to .6
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := s.Allocate(string(rune('a' + i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Allocate("z"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("err = %v, want ErrExhausted", err)
	}
}

func TestNodePorts(t *testing.T) {
	if _, err := NewNodePorts(32767, 30000); !errors.Is(err, ErrInvalid) {
		t.Errorf("reversed range: %v", err)
	}
	n, err := NewNodePorts(DefaultNodePortMin, DefaultNodePortMax)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := n.Allocate("ns/a:http"); p != 30000 {
		t.Fatalf("first port %d", p)
	}
	if p, _ := n.Allocate("ns/a:http"); p != 30000 {
		t.Fatalf("not idempotent: %d", p)
	}
	if err := n.Reserve("ns/b:http", 30000); !errors.Is(err, ErrConflict) {
		t.Errorf("Reserve taken port: %v", err)
	}
	if err := n.Reserve("ns/b:http", 8080); !errors.Is(err, ErrInvalid) {
		t.Errorf("Reserve out of range: %v", err)
	}
	if err := n.Reserve("ns/b:http", 31000); err != nil {
		t.Fatal(err)
	}
	n.Release("ns/a:http")
	if p, _ := n.Allocate("ns/c:dns"); p != 30001 {
		t.Errorf("after release got %d, want 30001 (next-fit)", p)
	}
	// Restore: the view lists a, released since (it stays released), and b; c was
	// allocated by a create that is still in flight.
	released := n.Restore(map[string]int{"ns/a:http": 30005, "ns/b:http": 31000, "ns/d:x": 0, "ns/e:y": 99})
	if len(released) != 0 {
		t.Errorf("released %v", released)
	}
	got := map[string]int{}
	for _, o := range []string{"ns/a:http", "ns/b:http", "ns/c:dns", "ns/d:x", "ns/e:y"} {
		if p, ok := n.Lookup(o); ok {
			got[o] = p
		}
	}
	want := map[string]int{"ns/b:http": 31000, "ns/c:dns": 30001}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after Restore %v, want %v", got, want)
	}
	// Nothing is in flight any more: the view wins.
	if released := n.Restore(map[string]int{"ns/a:http": 30005}); !reflect.DeepEqual(released, []string{"ns/b:http", "ns/c:dns"}) {
		t.Errorf("second Restore released %v", released)
	}
	if p, _ := n.Lookup("ns/a:http"); p != 30005 {
		t.Errorf("ns/a:http = %d, want 30005", p)
	}

	small, _ := NewNodePorts(40000, 40001)
	small.Allocate("a")
	small.Allocate("b")
	if _, err := small.Allocate("c"); !errors.Is(err, ErrExhausted) {
		t.Errorf("err = %v, want ErrExhausted", err)
	}
}
