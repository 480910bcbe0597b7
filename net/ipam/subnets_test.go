package ipam

import (
	"errors"
	"testing"
)

func TestSplitCluster(t *testing.T) {
	tests := []struct {
		cidr    string
		bits    int
		wantLen int
		wantErr error
	}{
		{DefaultClusterCIDR, DefaultNodeMaskBits, 256, nil},
		{"10.244.7.9/16", 24, 256, nil}, // masked
		{"10.0.0.0/8", 30, 1 << 22, nil},
		{"10.244.0.0/24", 24, 1, nil},
		{"10.244.0.0/16", 15, 0, ErrInvalid},
		{"10.244.0.0/16", 31, 0, ErrInvalid},
		{"fd00::/48", 64, 0, ErrInvalid},
		{"10.244.0.0", 24, 0, ErrInvalid},
		{"", 24, 0, ErrInvalid},
	}
	for _, tt := range tests {
		s, err := SplitCluster(tt.cidr, tt.bits)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("SplitCluster(%q, %d) error = %v, want %v", tt.cidr, tt.bits, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("SplitCluster(%q, %d): %v", tt.cidr, tt.bits, err)
			continue
		}
		if s.Len() != tt.wantLen {
			t.Errorf("SplitCluster(%q, %d).Len() = %d, want %d", tt.cidr, tt.bits, s.Len(), tt.wantLen)
		}
	}
}

func TestSubnetsAllocate(t *testing.T) {
	def, err := SplitCluster(DefaultClusterCIDR, DefaultNodeMaskBits)
	if err != nil {
		t.Fatal(err)
	}
	tiny, err := SplitCluster("10.1.0.0/23", 24)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		s       *Subnets
		taken   []string
		want    string
		wantErr error
	}{
		{"first node", def, nil, "10.244.0.0/24", nil},
		{"next after two", def, []string{"10.244.0.0/24", "10.244.1.0/24"}, "10.244.2.0/24", nil},
		{"unordered", def, []string{"10.244.1.0/24", "10.244.0.0/24", "10.244.3.0/24"}, "10.244.2.0/24", nil},
		{"fills a gap", def, []string{"10.244.1.0/24"}, "10.244.0.0/24", nil},
		{"bigger taken block", def, []string{"10.244.0.0/23"}, "10.244.2.0/24", nil},
		{"smaller taken block", def, []string{"10.244.0.128/25"}, "10.244.1.0/24", nil},
		{"unmasked entry", def, []string{"10.244.0.7/24"}, "10.244.1.0/24", nil},
		{"outside the cluster ignored", def, []string{"10.245.0.0/24", "192.168.0.0/16"}, "10.244.0.0/24", nil},
		{"duplicates", def, []string{"10.244.0.0/24", "10.244.0.0/24"}, "10.244.1.0/24", nil},
		{"malformed", def, []string{"10.244.0.0/24", "bogus"}, "", ErrInvalid},
		{"covering block", def, []string{"10.0.0.0/8"}, "", ErrExhausted},
		{"exhausted", tiny, []string{"10.1.0.0/24", "10.1.1.0/24"}, "", ErrExhausted},
		{"last one", tiny, []string{"10.1.0.0/24"}, "10.1.1.0/24", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Allocate("node-a", tt.taken)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Allocate = %q, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Allocate = %q, %v; want %q", got, err, tt.want)
			}
			if !tt.s.Contains(got) {
				t.Errorf("Contains(%q) = false", got)
			}
			again, _ := tt.s.Allocate("node-b", tt.taken)
			if again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
		})
	}
}

func TestSubnetsAllocateAllNeverDoubles(t *testing.T) {
	s, err := SplitCluster("10.244.0.0/20", 24)
	if err != nil {
		t.Fatal(err)
	}
	var taken []string
	seen := map[string]bool{}
	for i := 0; i < s.Len(); i++ {
		got, err := s.Allocate("n", taken)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[got] {
			t.Fatalf("allocation %d doubled %s", i, got)
		}
		seen[got] = true
		taken = append(taken, got)
	}
	if _, err := s.Allocate("n", taken); !errors.Is(err, ErrExhausted) {
		t.Fatalf("after %d subnets: err = %v, want ErrExhausted", s.Len(), err)
	}
}

func TestSubnetsContains(t *testing.T) {
	s, _ := SplitCluster(DefaultClusterCIDR, DefaultNodeMaskBits)
	for cidr, want := range map[string]bool{
		"10.244.3.0/24": true,
		"10.244.3.1/24": false, // not a network address
		"10.244.3.0/25": false,
		"10.245.0.0/24": false,
		"nonsense":      false,
	} {
		if got := s.Contains(cidr); got != want {
			t.Errorf("Contains(%q) = %v, want %v", cidr, got, want)
		}
	}
}
