package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
)

const testSubnet = "10.244.1.0/24"

func ip(last int) net.IP { return net.IPv4(10, 244, 1, byte(last)).To4() }

// octets turns allocations into owner → last octet, for compact expectations.
func octets(m map[string]net.IP) map[string]int {
	out := map[string]int{}
	for o, a := range m {
		out[o] = int(a.To4()[3])
	}
	return out
}

func apply(t *testing.T, p *Pool, ops []string) {
	t.Helper()
	for _, op := range ops {
		owner := op[1:]
		switch op[0] {
		case '+':
			if _, err := p.Allocate(owner); err != nil {
				t.Fatalf("Allocate(%q): %v", owner, err)
			}
		case '-':
			if err := p.Release(owner); err != nil {
				t.Fatalf("Release(%q): %v", owner, err)
			}
		default:
			t.Fatalf("bad op %q", op)
		}
	}
}

// checkUnique fails if two owners share an address or one holds a reserved address.
func checkUnique(t *testing.T, p *Pool) {
	t.Helper()
	seen := map[string]string{}
	for o, a := range p.Allocations() {
		if prev, ok := seen[a.String()]; ok {
			t.Fatalf("%s held by both %q and %q", a, prev, o)
		}
		seen[a.String()] = o
		if last := a.To4()[3]; last == 0 || last == 1 || last == 255 {
			t.Fatalf("%q holds reserved address %s", o, a)
		}
	}
}

func TestPoolAllocate(t *testing.T) {
	p, err := NewPool(testSubnet)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Gateway(); !got.Equal(ip(1)) {
		t.Errorf("Gateway = %s", got)
	}
	if got := p.GatewayCIDR(); got != "10.244.1.1/24" {
		t.Errorf("GatewayCIDR = %s", got)
	}
	a, _ := p.Allocate("a")
	b, _ := p.Allocate("b")
	a2, _ := p.Allocate("a")
	if !a.Equal(ip(2)) || !b.Equal(ip(3)) || !a2.Equal(a) {
		t.Fatalf("a=%s b=%s a again=%s; want .2 .3 .2", a, b, a2)
	}
	if err := p.Release("a"); err != nil {
		t.Fatal(err)
	}
	if err := p.Release("never"); err != nil {
		t.Fatal(err)
	}
	// A released address is not reused before the range wraps.
	if c, _ := p.Allocate("c"); !c.Equal(ip(4)) {
		t.Errorf("c = %s, want .4", c)
	}
	if _, ok := p.Lookup("a"); ok {
		t.Error("a still allocated after Release")
	}
	if got := p.Free(); got != 253-2 {
		t.Errorf("Free = %d, want 251", got)
	}
}

func TestPoolExhaustionAndWrap(t *testing.T) {
	p, err := NewPool("10.244.1.0/29") // .2 to .6 usable
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := p.Allocate(fmt.Sprint(i)); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	if _, err := p.Allocate("x"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("6th allocation: err = %v, want ErrExhausted", err)
	}
	p.Release("1") // .3
	if got, err := p.Allocate("x"); err != nil || !got.Equal(ip(3)) {
		t.Fatalf("after release: %s, %v; want .3", got, err)
	}
	checkUnique(t, p)
}

func TestNewPoolInvalid(t *testing.T) {
	for _, cidr := range []string{"10.244.1.0/31", "10.244.1.0/32", "fd00::/64", "x"} {
		if _, err := NewPool(cidr); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewPool(%q) err = %v, want ErrInvalid", cidr, err)
		}
	}
}

func TestOpenPoolPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	p, err := OpenPool(path, testSubnet)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, p, []string{"+a", "+b", "+c", "-b"})
	q, err := OpenPool(path, testSubnet)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := octets(q.Allocations()), map[string]int{"a": 2, "c": 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened = %v, want %v", got, want)
	}
	// The cursor survives too: .3 (released) is not reused at once.
	if d, _ := q.Allocate("d"); !d.Equal(ip(5)) {
		t.Errorf("d = %s, want .5", d)
	}
	if _, err := OpenPool(path, "10.244.2.0/24"); !errors.Is(err, ErrInvalid) {
		t.Errorf("open for another subnet: err = %v, want ErrInvalid", err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPool(path, testSubnet); !errors.Is(err, ErrInvalid) {
		t.Errorf("open corrupt file: err = %v, want ErrInvalid", err)
	}
}

func TestPoolWriteFailureRollsBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := OpenPool(filepath.Join(dir, "ipam.json"), testSubnet)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, p, []string{"+a"})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Allocate("b"); err == nil {
		t.Fatal("Allocate succeeded without its file")
	}
	if err := p.Release("a"); err == nil {
		t.Fatal("Release succeeded without its file")
	}
	if _, err := p.Restore(nil); err == nil {
		t.Fatal("Restore succeeded without its file")
	}
	if got, want := octets(p.Allocations()), map[string]int{"a": 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after failed writes = %v, want %v", got, want)
	}
}

// TestPoolCrashAndRestore replays churn, a crash (the pool is reopened from its file
// and the old one dropped), allocations racing the agent's read of the API, and a
// Restore with an API view that disagrees with the file.
func TestPoolCrashAndRestore(t *testing.T) {
	tests := []struct {
		name         string
		before       []string          // operations before the crash
		inflight     []string          // operations after reopening, before Restore
		api          map[string]net.IP // the API's view; nil IP: known, not reported
		want         map[string]int
		wantReleased []string
		after        []string // operations after Restore
		wantAfter    map[string]int
	}{
		{
			name:         "reported and unreported survive, deleted released",
			before:       []string{"+a", "+b", "+c"},
			api:          map[string]net.IP{"a": ip(2), "b": nil},
			want:         map[string]int{"a": 2, "b": 3},
			wantReleased: []string{"c"},
		},
		{
			name:   "API wins over the file",
			before: []string{"+a", "+b"},
			api:    map[string]net.IP{"a": ip(3), "b": ip(2)},
			want:   map[string]int{"a": 3, "b": 2},
		},
		{
			name:         "API claims the address of a deleted owner",
			before:       []string{"+a", "+b"},
			api:          map[string]net.IP{"a": nil, "c": ip(3)},
			want:         map[string]int{"a": 2, "c": 3},
			wantReleased: []string{"b"},
		},
		{
			name:         "API claims the address of an unreported owner",
			before:       []string{"+a", "+b"},
			api:          map[string]net.IP{"a": ip(3), "b": nil},
			want:         map[string]int{"a": 3},
			wantReleased: []string{"b"},
			after:        []string{"+b"},
			wantAfter:    map[string]int{"a": 3, "b": 4},
		},
		{
			name:         "in-flight allocation unknown to the API is kept",
			before:       []string{"+a", "+b"},
			inflight:     []string{"+d"},
			api:          map[string]net.IP{"a": ip(2)},
			want:         map[string]int{"a": 2, "d": 4},
			wantReleased: []string{"b"},
		},
		{
			name:      "released before the crash stays released, cursor kept",
			before:    []string{"+a", "+b", "-a"},
			api:       map[string]net.IP{"b": ip(3)},
			want:      map[string]int{"b": 3},
			after:     []string{"+e"},
			wantAfter: map[string]int{"b": 3, "e": 4},
		},
		{
			name:         "API maps two owners to one address",
			before:       []string{"+a"},
			api:          map[string]net.IP{"x": ip(9), "y": ip(9), "a": nil},
			want:         map[string]int{"a": 2, "x": 9},
			wantReleased: []string{"y"},
		},
		{
			name:   "API addresses the pool cannot hold count as unreported",
			before: []string{"+a"},
			api:    map[string]net.IP{"a": net.IPv4(10, 9, 9, 9), "gw": ip(1), "bc": ip(255)},
			want:   map[string]int{"a": 2},
		},
		{
			name:         "API empty: everything released",
			before:       []string{"+a", "+b", "-a", "+c"},
			api:          map[string]net.IP{},
			want:         map[string]int{},
			wantReleased: []string{"b", "c"},
		},
		{
			name:     "heavy churn",
			before:   []string{"+p1", "+p2", "+p3", "-p2", "+p4", "-p1", "+p5", "+p2", "-p3"},
			inflight: []string{"+p6", "-p4", "+p7"},
			api:      map[string]net.IP{"p2": ip(7), "p4": ip(5), "p5": nil, "p8": ip(8)},
			// p2 moves to .7 (its API address); p4, released in flight, stays
			// released although the (older) view still lists it; p8's API address
			// wins over in-flight p6, which must be torn down.
			want:         map[string]int{"p2": 7, "p5": 6, "p7": 9, "p8": 8},
			wantReleased: []string{"p6"},
			after:        []string{"+p9", "+p6"},
			wantAfter:    map[string]int{"p2": 7, "p5": 6, "p7": 9, "p8": 8, "p9": 10, "p6": 11},
		},
		{
			name:     "in-flight owner the view lists with an older address keeps its own",
			before:   []string{"+a"},
			inflight: []string{"-a", "+a"},
			api:      map[string]net.IP{"a": ip(2)},
			want:     map[string]int{"a": 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ipam.json")
			p, err := OpenPool(path, testSubnet)
			if err != nil {
				t.Fatal(err)
			}
			apply(t, p, tt.before)
			p = nil // crash: nothing but the file survives

			p, err = OpenPool(path, testSubnet)
			if err != nil {
				t.Fatal(err)
			}
			apply(t, p, tt.inflight)
			released, err := p.Restore(tt.api)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(released, tt.wantReleased) {
				t.Errorf("released = %v, want %v", released, tt.wantReleased)
			}
			if got := octets(p.Allocations()); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("after Restore = %v, want %v", got, tt.want)
			}
			checkUnique(t, p)

			// The file matches memory, and a second restart with the same view
			// changes nothing.
			q, err := OpenPool(path, testSubnet)
			if err != nil {
				t.Fatal(err)
			}
			api := map[string]net.IP{}
			for o, a := range p.Allocations() {
				api[o] = a
			}
			if again, err := q.Restore(api); err != nil || len(again) != 0 {
				t.Errorf("second Restore released %v, %v", again, err)
			}
			if !reflect.DeepEqual(octets(q.Allocations()), octets(p.Allocations())) {
				t.Errorf("reopened = %v, want %v", octets(q.Allocations()), octets(p.Allocations()))
			}

			if tt.after != nil {
				apply(t, p, tt.after)
				if got := octets(p.Allocations()); !reflect.DeepEqual(got, tt.wantAfter) {
					t.Errorf("after more operations = %v, want %v", got, tt.wantAfter)
				}
				checkUnique(t, p)
			}
		})
	}
}

func TestPoolConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	p, err := OpenPool(path, "10.244.0.0/22")
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				owner := fmt.Sprintf("w%d-%d", w, i)
				a, err := p.Allocate(owner)
				if err != nil {
					errs <- err
					return
				}
				if b, _ := p.Allocate(owner); !b.Equal(a) {
					errs <- fmt.Errorf("%s: %s then %s", owner, a, b)
					return
				}
				if i%3 == 0 {
					if err := p.Release(owner); err != nil {
						errs <- err
						return
					}
				}
			}
		}(w)
	}
	wg.Add(1)
	go func() { // a concurrent garbage collection that knows everyone
		defer wg.Done()
		for i := 0; i < 5; i++ {
			if _, err := p.Restore(p.Allocations()); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := p.Allocations()
	want := workers * (each - (each+2)/3)
	if len(got) != want {
		t.Fatalf("%d allocations, want %d", len(got), want)
	}
	addrs := make([]string, 0, len(got))
	for _, a := range got {
		addrs = append(addrs, a.String())
	}
	sort.Strings(addrs)
	for i := 1; i < len(addrs); i++ {
		if addrs[i] == addrs[i-1] {
			t.Fatalf("%s doubled", addrs[i])
		}
	}
	q, err := OpenPool(path, "10.244.0.0/22")
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Allocations()) != want {
		t.Fatalf("file holds %d allocations, want %d", len(q.Allocations()), want)
	}
}

func TestPoolAllocatePreferring(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pool.json")
	p, err := OpenPool(path, testSubnet)
	if err != nil {
		t.Fatal(err)
	}
	taken, _ := p.Allocate("other") // .2
	for _, tc := range []struct {
		owner string
		want  net.IP
		got   net.IP
	}{
		{"vm1", ip(50), ip(50)},                 // free: taken as asked
		{"vm1", ip(60), ip(50)},                 // an owner keeps what it has
		{"vm2", taken, ip(3)},                   // held by another: the next free one
		{"vm3", ip(1), ip(4)},                   // the gateway is never handed out
		{"vm4", net.ParseIP("10.9.9.9"), ip(5)}, // outside the subnet
		{"vm5", nil, ip(6)},                     // no preference
	} {
		got, err := p.AllocatePreferring(tc.owner, tc.want)
		if err != nil || !got.Equal(tc.got) {
			t.Errorf("AllocatePreferring(%s, %v) = %v, %v; want %v", tc.owner, tc.want, got, err, tc.got)
		}
	}
	// The preferred allocation is on disk like any other.
	q, err := OpenPool(path, testSubnet)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := q.Lookup("vm1"); !ok || !got.Equal(ip(50)) {
		t.Errorf("after reopening, vm1 = %v %v", got, ok)
	}
}

// TestPoolConcurrentAllocationsAreOnDiskWhenReturned checks what the shared writes
// must keep: an address handed out is in the file by the time Allocate returns, even
// when another caller's write carried it.
func TestPoolConcurrentAllocationsAreOnDiskWhenReturned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	p, err := OpenPool(path, testSubnet)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("pod-%d", i)
			a, err := p.Allocate(owner)
			if err != nil {
				errs <- err
				return
			}
			b, err := os.ReadFile(path)
			if err != nil {
				errs <- err
				return
			}
			var f poolFile
			if err := json.Unmarshal(b, &f); err != nil {
				errs <- err
				return
			}
			if f.Owners[owner] != a.String() {
				errs <- fmt.Errorf("%s got %s, but the file says %q", owner, a, f.Owners[owner])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
