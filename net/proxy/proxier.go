package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// Proxier writes Services and hostPorts into iptables. The zero value is
// usable and programs the "nat" and "filter" tables of the network namespace
// of the thread that calls Sync (commands are exec'd from it). A Proxier is
// safe for concurrent use; Syncs are serialised.
//
// A Proxier assumes it alone writes its chains: after its first successful
// Sync it remembers what it wrote instead of reading iptables again, and it
// skips a Sync whose input yields the same rules as the last one. After an
// error it reads the tables afresh on the next Sync.
type Proxier struct {
	// Table is the table of the DNAT chains. If empty, "nat".
	Table string
	// MasqueradeMark is the packet mark bit that asks for SNAT in
	// POSTROUTING. If zero, 0x20000 (clear of kube-proxy's 0x4000 and
	// 0x8000).
	MasqueradeMark uint32
	// RestoreCommand and SaveCommand are the iptables-restore and
	// iptables-save executables. If empty, "iptables-restore" and
	// "iptables-save" from PATH.
	RestoreCommand string
	SaveCommand    string

	mu sync.Mutex
	// synced is true once the state below mirrors the kernel's.
	synced bool
	// lastHash is the hash of the last desired rules restored.
	lastHash [sha256.Size]byte
	// chains are the nat SVC and SEP chains the last restore left.
	chains []string
	// filterChains are the filter chains the last restore left.
	filterChains []string
}

// SyncStats describes what the last Sync did; it is for tests and metrics.
type SyncStats struct {
	// Skipped is true when the rules were unchanged and nothing was exec'd.
	Skipped bool
	// PayloadBytes is the size of the iptables-restore input.
	PayloadBytes int
	// Chains is the number of nat chains written.
	Chains int
}

func (p *Proxier) natTable() string {
	if p.Table == "" {
		return "nat"
	}
	return p.Table
}

func (p *Proxier) mark() uint32 {
	if p.MasqueradeMark == 0 {
		return defaultMasqueradeM
	}
	return p.MasqueradeMark
}

// Sync makes cloudbox's chains match services and hostPorts exactly: rules
// of Services no longer given are removed in the same atomic restore. The
// order of the input does not matter.
func (p *Proxier) Sync(services []Service, hostPorts []HostPort) error {
	_, err := p.SyncWithStats(services, hostPorts)
	return err
}

// SyncWithStats is Sync, also saying what it did.
func (p *Proxier) SyncWithStats(services []Service, hostPorts []HostPort) (SyncStats, error) {
	return p.SyncState(State{Services: services, HostPorts: hostPorts})
}

// SyncState is Sync with namespace isolation as well: every chain the proxy
// owns, in both tables, is written in the same iptables-restore run.
func (p *Proxier) SyncState(s State) (SyncStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()

	nat := p.natTable()
	d := build(s.Services, s.HostPorts, p.mark())
	d.buildIsolation(s.Isolated)
	h := sha256.New()
	h.Write([]byte(nat))
	h.Write([]byte{0})
	h.Write(d.nat.Bytes())
	h.Write([]byte{0})
	h.Write(d.filter.Bytes())
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	stats := SyncStats{Chains: len(d.natChains)}
	if p.synced && sum == p.lastHash {
		stats.Skipped = true
		return stats, nil
	}

	var existing, existingFilter []string
	var fix []string // "table rule" lines that put the jumps right
	if p.synced {
		existing = p.chains
		existingFilter = p.filterChains
	} else {
		st, err := p.read()
		if err != nil {
			return stats, err
		}
		for c := range st.chains[nat] {
			if ours(nat, nat, c) {
				existing = append(existing, c)
			}
		}
		for c := range st.chains["filter"] {
			if ours("filter", nat, c) {
				existingFilter = append(existingFilter, c)
			}
		}
		fix = st.fixJumps(nat)
	}
	var stale []string
	for _, c := range existing {
		if !slices.Contains(fixedNatChains, c) && !slices.Contains(d.natChains, c) {
			stale = append(stale, c)
		}
	}
	slices.Sort(stale)
	var staleFilter []string
	for _, c := range existingFilter {
		if !slices.Contains(d.filterChains, c) {
			staleFilter = append(staleFilter, c)
		}
	}
	slices.Sort(staleFilter)

	payload := d.payload(nat, stale, staleFilter, fix)
	stats.PayloadBytes = len(payload)
	if err := p.restore(payload); err != nil {
		p.synced = false
		return stats, err
	}
	p.synced = true
	p.lastHash = sum
	p.chains = d.natChains
	p.filterChains = d.filterChains
	return stats, nil
}

// Invalidate makes the next Sync read the tables and rewrite every rule and
// jump, even if its input is unchanged. Call it on a periodic full resync,
// or when something else may have flushed the tables (a firewall reload).
func (p *Proxier) Invalidate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.synced = false
}

// Cleanup removes every chain and jump the proxy made, in this Proxier's
// tables, whether this Proxier or an earlier process made them. Chains of
// other cloudbox components are left alone. Cleanup is idempotent.
func (p *Proxier) Cleanup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.synced = false
	p.chains = nil

	nat := p.natTable()
	st, err := p.read()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, table := range []string{nat, "filter"} {
		var mine []string
		for c := range st.chains[table] {
			if ours(table, nat, c) {
				mine = append(mine, c)
			}
		}
		slices.Sort(mine)
		var dels []string
		for _, r := range st.rules[table] {
			chain, target := ruleChainTarget(r)
			if builtin(chain) && ours(table, nat, target) {
				dels = append(dels, "-D"+strings.TrimPrefix(r, "-A"))
			}
		}
		if len(mine) == 0 && len(dels) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", table)
		for _, d := range dels {
			b.WriteString(d + "\n")
		}
		for _, c := range mine {
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
		for _, c := range mine {
			if c == chainIsolation && st.referenced(table, nat, c) {
				continue // the firewall's CLOUDBOX-FORWARD still jumps there
			}
			fmt.Fprintf(&b, "-X %s\n", c)
		}
		b.WriteString("COMMIT\n")
	}
	if b.Len() == 0 {
		return nil
	}
	return p.restore(b.Bytes())
}

func (p *Proxier) restore(payload []byte) error {
	name := p.RestoreCommand
	if name == "" {
		name = "iptables-restore"
	}
	cmd := exec.Command(name, "--noflush", "--wait")
	cmd.Stdin = bytes.NewReader(payload)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("proxy: %s: %w: %s%s", name, err, strings.TrimSpace(stderr.String()), lineHint(payload, stderr.String()))
	}
	return nil
}

// lineHint quotes the payload line iptables-restore complained about, as
// "line N failed" says nothing by itself.
func lineHint(payload []byte, stderr string) string {
	i := strings.Index(stderr, "line ")
	if i < 0 {
		return ""
	}
	var n int
	if _, err := fmt.Sscanf(stderr[i:], "line %d", &n); err != nil || n <= 0 {
		return ""
	}
	lines := bytes.Split(payload, []byte("\n"))
	if n > len(lines) {
		return ""
	}
	return fmt.Sprintf(" (line %d: %q)", n, lines[n-1])
}

// state is what iptables-save showed of the tables.
type state struct {
	chains map[string]map[string]bool // table → chain set
	rules  map[string][]string        // table → "-A ..." lines
}

// referenced reports whether a chain the proxy does not own jumps to chain.
func (s *state) referenced(table, nat, chain string) bool {
	for _, r := range s.rules[table] {
		if c, target := ruleChainTarget(r); target == chain && !ours(table, nat, c) {
			return true
		}
	}
	return false
}

func (s *state) hasJump(j jump) bool {
	for _, r := range s.rules[j.table] {
		if chain, target := ruleChainTarget(r); chain == j.chain && target == j.target {
			return true
		}
	}
	return false
}

// fixJumps returns the "table rule" lines that make the jumps into our
// chains exist once each. In a built-in chain that lacks one, all of ours
// are deleted and inserted again, so they always stand in the same order.
func (s *state) fixJumps(nat string) []string {
	type tc struct{ table, chain string }
	broken := map[tc]bool{}
	for _, j := range jumps(nat) {
		if !s.hasJump(j) {
			broken[tc{j.table, j.chain}] = true
		}
	}
	var out []string
	for _, table := range []string{nat, "filter"} {
		for _, r := range s.rules[table] {
			chain, target := ruleChainTarget(r)
			if broken[tc{table, chain}] && ours(table, nat, target) {
				out = append(out, table+" -D"+strings.TrimPrefix(r, "-A"))
			}
		}
	}
	for _, j := range jumps(nat) {
		if !broken[tc{j.table, j.chain}] {
			continue
		}
		if j.spec != "" {
			out = append(out, fmt.Sprintf("%s -I %s 1 %s -j %s", j.table, j.chain, j.spec, j.target))
		} else {
			out = append(out, fmt.Sprintf("%s -I %s 1 -j %s", j.table, j.chain, j.target))
		}
	}
	return out
}

// read runs iptables-save for the nat table and filter.
func (p *Proxier) read() (*state, error) {
	name := p.SaveCommand
	if name == "" {
		name = "iptables-save"
	}
	st := &state{chains: map[string]map[string]bool{}, rules: map[string][]string{}}
	for _, table := range []string{p.natTable(), "filter"} {
		var stderr bytes.Buffer
		cmd := exec.Command(name, "-t", table)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("proxy: %s -t %s: %w: %s", name, table, err, strings.TrimSpace(stderr.String()))
		}
		st.chains[table] = map[string]bool{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, ":"):
				if f := strings.Fields(line[1:]); len(f) > 0 {
					st.chains[table][f[0]] = true
				}
			case strings.HasPrefix(line, "-A "):
				st.rules[table] = append(st.rules[table], line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("proxy: reading %s -t %s: %w", name, table, err)
		}
	}
	return st, nil
}

// ruleChainTarget returns the chain of an "-A CHAIN ..." line and its -j
// target, if any.
func ruleChainTarget(rule string) (chain, target string) {
	f := strings.Fields(rule)
	if len(f) >= 2 {
		chain = f[1]
	}
	for i := 2; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" {
			target = f[i+1]
		}
	}
	return chain, target
}

func builtin(chain string) bool {
	switch chain {
	case "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING":
		return true
	}
	return false
}
