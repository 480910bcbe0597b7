// Package firewall keeps cloudbox's iptables rules.
//
// Every rule lives in chains of cloudbox's own, named CLOUDBOX-*, so that the
// host's rules are never edited: the only change to a built-in chain is one
// jump, inserted at position 1, into the matching cloudbox chain.
//
//	filter FORWARD     -> CLOUDBOX-FORWARD      isolation first, then accept traffic from
//	                                            and to the pod bridge
//	filter CLOUDBOX-FORWARD -> CLOUDBOX-ISOLATION  created empty here, filled by the proxy
//	nat    POSTROUTING -> CLOUDBOX-POSTROUTING  MASQUERADE cluster CIDR -> outside it
//
// Other cloudbox parts (the service proxy) add their chains with EnsureChain;
// Cleanup removes all of them.
//
// The functions run the iptables binary (through go-iptables) found in PATH,
// whichever backend (nft or legacy) it is, and act on the network namespace of
// the calling OS thread, which the child process inherits. They are safe for
// concurrent use: iptables serialises through its own lock (-w).
package firewall

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// Chain names. Every chain cloudbox owns starts with ChainPrefix.
const (
	ChainPrefix      = "CLOUDBOX-"
	ChainForward     = "CLOUDBOX-FORWARD"
	ChainPostrouting = "CLOUDBOX-POSTROUTING"
	// ChainIsolation is where the proxy writes namespace isolation. It is
	// jumped to from CLOUDBOX-FORWARD, before its ACCEPTs, so that the order
	// in which the firewall and the proxy start does not matter.
	ChainIsolation = "CLOUDBOX-ISOLATION"
)

// DefaultBridge is the bridge name used when Config.Bridge is empty.
const DefaultBridge = "cbx0"

// tables cloudbox keeps chains in; Cleanup and Save look at these.
var tables = []string{"filter", "nat"}

// Config is the node's network as the firewall needs to know it.
type Config struct {
	// ClusterCIDR is the IPv4 range of all pod subnets, e.g. "10.244.0.0/16".
	// Traffic from it to outside it is masqueraded. Required.
	ClusterCIDR string
	// Bridge is the node's pod bridge. If empty, DefaultBridge.
	Bridge string
}

// Rule is one rule of a cloudbox chain, as iptables arguments.
type Rule []string

func newIPT() (*iptables.IPTables, error) {
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv4)
	if err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	return ipt, nil
}

// rules returns the rules Ensure puts in CLOUDBOX-FORWARD (filter) and
// CLOUDBOX-POSTROUTING (nat).
func (cfg Config) rules() (filter, nat []Rule, err error) {
	_, cidr, err := net.ParseCIDR(cfg.ClusterCIDR)
	if err != nil || cidr.IP.To4() == nil {
		return nil, nil, fmt.Errorf("firewall: cluster CIDR %q is not an IPv4 CIDR", cfg.ClusterCIDR)
	}
	br := cfg.Bridge
	if br == "" {
		br = DefaultBridge
	}
	c := cidr.String()
	filter = []Rule{
		{"-m", "comment", "--comment", "cloudbox: namespace isolation", "-j", ChainIsolation},
		{"-i", br, "-m", "comment", "--comment", "cloudbox: from pods", "-j", "ACCEPT"},
		{"-o", br, "-m", "comment", "--comment", "cloudbox: to pods", "-j", "ACCEPT"},
	}
	nat = []Rule{
		{"-s", c, "!", "-d", c, "-m", "comment", "--comment", "cloudbox: pod egress", "-j", "MASQUERADE"},
	}
	return filter, nat, nil
}

// Ensure creates CLOUDBOX-FORWARD and CLOUDBOX-POSTROUTING with cfg's rules
// and their jumps from FORWARD and POSTROUTING. It is idempotent: run again
// with the same cfg on rules that are in place, it changes nothing.
func Ensure(cfg Config) error {
	filter, nat, err := cfg.rules()
	if err != nil {
		return err
	}
	ipt, err := newIPT()
	if err != nil {
		return err
	}
	// Created, never flushed: its rules are the proxy's.
	if err := createChain(ipt, "filter", ChainIsolation); err != nil {
		return err
	}
	if err := EnsureChain(ipt, "filter", ChainForward, []string{"FORWARD"}, filter); err != nil {
		return err
	}
	return EnsureChain(ipt, "nat", ChainPostrouting, []string{"POSTROUTING"}, nat)
}

// EnsureChain makes chain (which must start with ChainPrefix) exist in table
// holding exactly rules, in order, and jumped to exactly once, as the first
// rule, from each built-in chain in from. It changes nothing that is already
// right. If ipt is nil, a default IPv4 handle is used.
func EnsureChain(ipt *iptables.IPTables, table, chain string, from []string, rules []Rule) error {
	if !strings.HasPrefix(chain, ChainPrefix) {
		return fmt.Errorf("firewall: chain %q is not cloudbox's (%s*)", chain, ChainPrefix)
	}
	if ipt == nil {
		var err error
		if ipt, err = newIPT(); err != nil {
			return err
		}
	}
	if err := createChain(ipt, table, chain); err != nil {
		return err
	}
	if err := syncRules(ipt, table, chain, rules); err != nil {
		return err
	}
	for _, builtin := range from {
		if err := ensureJump(ipt, table, builtin, chain); err != nil {
			return err
		}
	}
	return nil
}

// createChain makes chain exist, leaving its rules alone. Another writer (the
// proxy's iptables-restore declares CLOUDBOX-ISOLATION too) may create it between
// the check and the create: that is success, not an error.
func createChain(ipt *iptables.IPTables, table, chain string) error {
	exists, err := ipt.ChainExists(table, chain)
	if err != nil {
		return fmt.Errorf("firewall: %s %s: %w", table, chain, err)
	}
	if exists {
		return nil
	}
	if err := ipt.NewChain(table, chain); err != nil {
		if again, _ := ipt.ChainExists(table, chain); again {
			return nil
		}
		return fmt.Errorf("firewall: create %s %s: %w", table, chain, err)
	}
	return nil
}

// syncRules leaves chain alone when it holds exactly rules, else refills it.
func syncRules(ipt *iptables.IPTables, table, chain string, rules []Rule) error {
	listed, err := ipt.List(table, chain)
	if err != nil {
		return fmt.Errorf("firewall: list %s %s: %w", table, chain, err)
	}
	n := 0
	for _, l := range listed {
		if strings.HasPrefix(l, "-A ") {
			n++
		}
	}
	same := n == len(rules)
	for i := 0; same && i < len(rules); i++ {
		// iptables -S prints rules in its own canonical spelling; -C is the
		// reliable comparison, and with the count it proves equality as a set.
		ok, err := ipt.Exists(table, chain, rules[i]...)
		if err != nil {
			return fmt.Errorf("firewall: check %s %s: %w", table, chain, err)
		}
		same = ok
	}
	if same {
		return nil
	}
	if err := ipt.ClearChain(table, chain); err != nil {
		return fmt.Errorf("firewall: flush %s %s: %w", table, chain, err)
	}
	for _, r := range rules {
		if err := ipt.Append(table, chain, r...); err != nil {
			return fmt.Errorf("firewall: %s %s: append %q: %w", table, chain, r, err)
		}
	}
	return nil
}

// ensureJump makes "-j chain" builtin's only jump to chain, preceded by
// nothing but other jumps to cloudbox chains (the proxy's, inserted at the
// top too): a jump already so placed is left alone, so that a restart leaves
// the order of cloudbox's jumps as it was; otherwise it goes to position 1.
func ensureJump(ipt *iptables.IPTables, table, builtin, chain string) error {
	positions, err := jumpPositions(ipt, table, builtin, func(target string) bool { return target == chain })
	if err != nil {
		return err
	}
	if len(positions) == 1 {
		ours, err := jumpPositions(ipt, table, builtin, isOurs)
		if err != nil {
			return err
		}
		// Positions 1..p all jump to cloudbox chains.
		if p := positions[0]; len(ours) >= p && ours[p-1] == p {
			return nil
		}
	}
	// Delete from the bottom so the positions stay valid.
	for i := len(positions) - 1; i >= 0; i-- {
		if err := ipt.DeleteById(table, builtin, positions[i]); err != nil {
			return fmt.Errorf("firewall: %s %s: delete jump %d: %w", table, builtin, positions[i], err)
		}
	}
	if err := ipt.Insert(table, builtin, 1, "-j", chain); err != nil {
		return fmt.Errorf("firewall: %s %s: insert jump to %s: %w", table, builtin, chain, err)
	}
	return nil
}

// jumpPositions returns the 1-based positions of the rules in chain whose
// -j or -g target satisfies match.
func jumpPositions(ipt *iptables.IPTables, table, chain string, match func(target string) bool) ([]int, error) {
	listed, err := ipt.List(table, chain)
	if err != nil {
		return nil, fmt.Errorf("firewall: list %s %s: %w", table, chain, err)
	}
	var pos []int
	n := 0
	for _, l := range listed {
		if !strings.HasPrefix(l, "-A ") {
			continue
		}
		n++
		if t := target(l); t != "" && match(t) {
			pos = append(pos, n)
		}
	}
	return pos, nil
}

// target returns the -j/-g target of a rule as printed by iptables -S.
func target(rule string) string {
	f := splitRule(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" || f[i] == "--jump" || f[i] == "--goto" {
			return f[i+1]
		}
	}
	return ""
}

// splitRule splits an iptables -S line into words, honouring double quotes
// (comments) so that a comment cannot fake a jump.
func splitRule(s string) []string {
	var words []string
	var b strings.Builder
	inQuote, escaped, have := false, false, false
	for _, r := range s {
		switch {
		case escaped:
			b.WriteRune(r)
			escaped = false
		case r == '\\' && inQuote:
			escaped = true
		case r == '"':
			inQuote = !inQuote
			have = true
		case r == ' ' && !inQuote:
			if have {
				words = append(words, b.String())
				b.Reset()
				have = false
			}
		default:
			b.WriteRune(r)
			have = true
		}
	}
	if have {
		words = append(words, b.String())
	}
	return words
}

func isOurs(chain string) bool { return strings.HasPrefix(chain, ChainPrefix) }

// Cleanup removes every jump to a CLOUDBOX-* chain from the other chains of
// the filter and nat tables, then every CLOUDBOX-* chain, leaving the rest of
// the tables as they were. Nothing to remove is not an error.
func Cleanup() error {
	ipt, err := newIPT()
	if err != nil {
		return err
	}
	var errs []error
	for _, table := range tables {
		chains, err := ipt.ListChains(table)
		if err != nil {
			errs = append(errs, fmt.Errorf("firewall: list %s chains: %w", table, err))
			continue
		}
		for _, chain := range chains {
			if isOurs(chain) {
				continue
			}
			pos, err := jumpPositions(ipt, table, chain, isOurs)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for i := len(pos) - 1; i >= 0; i-- {
				if err := ipt.DeleteById(table, chain, pos[i]); err != nil {
					errs = append(errs, fmt.Errorf("firewall: %s %s: delete jump %d: %w", table, chain, pos[i], err))
				}
			}
		}
		// Flush all first: cloudbox chains may jump to each other, and a
		// chain still referenced cannot be deleted.
		ours := slices.DeleteFunc(chains, func(c string) bool { return !isOurs(c) })
		for _, chain := range ours {
			if err := ipt.ClearChain(table, chain); err != nil {
				errs = append(errs, fmt.Errorf("firewall: flush %s %s: %w", table, chain, err))
			}
		}
		for _, chain := range ours {
			if err := ipt.DeleteChain(table, chain); err != nil {
				errs = append(errs, fmt.Errorf("firewall: delete %s %s: %w", table, chain, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Save returns cloudbox's part of the filter and nat tables in a stable,
// iptables-save-like text: each table's CLOUDBOX-* chains and their rules,
// and the jumps into them from other chains with their positions
// ("-I FORWARD 1 -j CLOUDBOX-FORWARD"). Counters are not included, so two
// Saves compare equal exactly when cloudbox's rules are the same.
func Save() (string, error) {
	ipt, err := newIPT()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, table := range tables {
		chains, err := ipt.ListChains(table)
		if err != nil {
			return "", fmt.Errorf("firewall: list %s chains: %w", table, err)
		}
		fmt.Fprintf(&b, "*%s\n", table)
		var ours, jumps, rules []string
		for _, chain := range chains {
			listed, err := ipt.List(table, chain)
			if err != nil {
				return "", fmt.Errorf("firewall: list %s %s: %w", table, chain, err)
			}
			if isOurs(chain) {
				ours = append(ours, "-N "+chain)
				for _, l := range listed {
					if strings.HasPrefix(l, "-A ") {
						rules = append(rules, l)
					}
				}
				continue
			}
			n := 0
			for _, l := range listed {
				if !strings.HasPrefix(l, "-A ") {
					continue
				}
				n++
				if t := target(l); isOurs(t) {
					jumps = append(jumps, fmt.Sprintf("-I %s %d %s", chain, n, strings.TrimPrefix(l, "-A "+chain+" ")))
				}
			}
		}
		slices.Sort(ours)
		for _, l := range ours {
			b.WriteString(l + "\n")
		}
		for _, l := range jumps {
			b.WriteString(l + "\n")
		}
		// Rules keep their order within a chain; chains come sorted.
		slices.SortStableFunc(rules, func(x, y string) int {
			return strings.Compare(strings.Fields(x)[1], strings.Fields(y)[1])
		})
		for _, l := range rules {
			b.WriteString(l + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String(), nil
}
