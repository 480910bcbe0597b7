package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudbox/cloudbox/net/firewall"
)

// Chain names. iptables limits a chain name to 28 characters.
const (
	chainServices      = "CLOUDBOX-SERVICES"
	chainNodePorts     = "CLOUDBOX-NODEPORTS"
	chainHostPorts     = "CLOUDBOX-HOSTPORTS"
	chainPostrouting   = "CLOUDBOX-POSTROUTING-SVC"
	chainMarkMasq      = "CLOUDBOX-MARK-MASQ"
	chainReject        = "CLOUDBOX-SVC-REJECT"
	chainIsolation     = firewall.ChainIsolation
	prefixIso          = "CLOUDBOX-ISO-"
	prefixSvc          = "CLOUDBOX-SVC-"
	prefixSep          = "CLOUDBOX-SEP-"
	hashLen            = 28 - len(prefixSep) // 15 base32 characters, 75 bits
	defaultMasqueradeM = 0x20000
)

// jump is a rule in a built-in chain that sends packets into one of ours.
type jump struct {
	table, chain, spec, target string
}

// jumps returns the jumps from built-in chains, in the order they are
// inserted (each goes to the top of its chain).
func jumps(natTable string) []jump {
	return []jump{
		{natTable, "PREROUTING", "", chainServices},
		{natTable, "OUTPUT", "", chainServices},
		{natTable, "PREROUTING", "-m addrtype --dst-type LOCAL", chainHostPorts},
		{natTable, "OUTPUT", "-m addrtype --dst-type LOCAL", chainHostPorts},
		{natTable, "POSTROUTING", "", chainPostrouting},
		{"filter", "INPUT", "", chainReject},
		{"filter", "FORWARD", "", chainReject},
		{"filter", "OUTPUT", "", chainReject},
	}
}

// fixedNatChains are the nat chains every Sync writes, whatever the input.
var fixedNatChains = []string{chainServices, chainNodePorts, chainHostPorts, chainPostrouting, chainMarkMasq}

// ours reports whether the proxy owns chain in table.
func ours(table, natTable, chain string) bool {
	switch table {
	case natTable:
		return slices.Contains(fixedNatChains, chain) ||
			strings.HasPrefix(chain, prefixSvc) || strings.HasPrefix(chain, prefixSep)
	case "filter":
		return chain == chainReject || chain == chainIsolation || strings.HasPrefix(chain, prefixIso)
	}
	return false
}

// chainHash names a chain after key so that the same service port or
// endpoint keeps its chain across syncs and restarts.
func chainHash(prefix, key string) string {
	sum := sha256.Sum256([]byte(key))
	return prefix + base32.StdEncoding.EncodeToString(sum[:])[:hashLen]
}

// desired is the rule set computed from one Sync's input.
type desired struct {
	nat, filter  bytes.Buffer // rules only, no chain declarations
	natChains    []string     // every nat chain written, fixed ones first
	filterChains []string     // every filter chain written, fixed ones first
}

// ipv4 returns ip as a dotted quad, or "" when ip is not a usable IPv4 address.
func ipv4(ip net.IP) string {
	v4 := ip.To4()
	if v4 == nil || v4.IsUnspecified() {
		return ""
	}
	return v4.String()
}

// comment makes s safe inside a double-quoted iptables-restore argument.
func comment(s string) string {
	return `"` + strings.NewReplacer(`"`, `'`, `\`, `/`, "\n", " ").Replace(s) + `"`
}

// build computes the rules for services and hostPorts. Its output depends
// only on the input's content, never on its order, so an unchanged input
// yields a byte-identical payload.
func build(services []Service, hostPorts []HostPort, mark uint32) *desired {
	d := &desired{natChains: slices.Clone(fixedNatChains), filterChains: []string{chainReject, chainIsolation}}
	markStr := "0x" + strconv.FormatUint(uint64(mark), 16)

	// Rules of CLOUDBOX-SERVICES and CLOUDBOX-NODEPORTS are collected apart
	// and written before the per-service chains, only for readability of
	// iptables-save.
	var svcRules, npRules, chainRules bytes.Buffer

	sorted := slices.Clone(services)
	slices.SortFunc(sorted, func(a, b Service) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for _, s := range sorted {
		vip := ipv4(s.ClusterIP)
		eps := sortedEndpoints(s.Endpoints)
		for _, sp := range s.Ports {
			if sp.Port <= 0 && sp.NodePort <= 0 {
				continue
			}
			proto := sp.Protocol.iptables()
			spName := fmt.Sprintf("%s/%s:%s/%s", s.Namespace, s.Name, sp.Name, proto)

			// Endpoints deduplicated by ip:port: two of the same would
			// collide on their SEP chain.
			type target struct{ ip, port string }
			var targets []target
			for _, ep := range eps {
				t := target{ep, strconv.Itoa(epPort(s.Endpoints, ep, sp))}
				if !slices.Contains(targets, t) {
					targets = append(targets, t)
				}
			}

			if len(targets) == 0 {
				if vip != "" && sp.Port > 0 {
					fmt.Fprintf(&d.filter, "-A %s -d %s/32 -p %s -m comment --comment %s -m %s --dport %d -j REJECT --reject-with icmp-port-unreachable\n",
						chainReject, vip, proto, comment(spName+" has no endpoints"), proto, sp.Port)
				}
				if sp.NodePort > 0 {
					fmt.Fprintf(&d.filter, "-A %s -p %s -m comment --comment %s -m addrtype --dst-type LOCAL -m %s --dport %d -j REJECT --reject-with icmp-port-unreachable\n",
						chainReject, proto, comment(spName+" has no endpoints"), proto, sp.NodePort)
				}
				continue
			}

			svcChain := chainHash(prefixSvc, spName)
			d.natChains = append(d.natChains, svcChain)
			if vip != "" && sp.Port > 0 {
				fmt.Fprintf(&svcRules, "-A %s -d %s/32 -p %s -m comment --comment %s -m %s --dport %d -j %s\n",
					chainServices, vip, proto, comment(spName+" cluster IP"), proto, sp.Port, svcChain)
			}
			if sp.NodePort > 0 {
				fmt.Fprintf(&npRules, "-A %s -p %s -m comment --comment %s -m %s --dport %d -j %s\n",
					chainNodePorts, proto, comment(spName+" node port"), proto, sp.NodePort, chainMarkMasq)
				fmt.Fprintf(&npRules, "-A %s -p %s -m comment --comment %s -m %s --dport %d -j %s\n",
					chainNodePorts, proto, comment(spName+" node port"), proto, sp.NodePort, svcChain)
			}

			n := len(targets)
			for i, t := range targets {
				sepChain := chainHash(prefixSep, spName+" "+t.ip+":"+t.port)
				d.natChains = append(d.natChains, sepChain)
				if i < n-1 {
					fmt.Fprintf(&chainRules, "-A %s -m statistic --mode random --probability %0.10f -j %s\n",
						svcChain, 1.0/float64(n-i), sepChain)
				} else {
					fmt.Fprintf(&chainRules, "-A %s -j %s\n", svcChain, sepChain)
				}
			}
			for _, t := range targets {
				sepChain := chainHash(prefixSep, spName+" "+t.ip+":"+t.port)
				// Hairpin: a pod reaching itself through the Service
				// must see the node, not itself, as the source.
				fmt.Fprintf(&chainRules, "-A %s -s %s/32 -j %s\n", sepChain, t.ip, chainMarkMasq)
				fmt.Fprintf(&chainRules, "-A %s -p %s -m %s -j DNAT --to-destination %s:%s\n",
					sepChain, proto, proto, t.ip, t.port)
			}
		}
	}

	d.nat.Write(svcRules.Bytes())
	fmt.Fprintf(&d.nat, "-A %s -m comment --comment %s -m addrtype --dst-type LOCAL -j %s\n",
		chainServices, comment("node ports; must be last"), chainNodePorts)
	d.nat.Write(npRules.Bytes())
	d.nat.Write(chainRules.Bytes())

	hps := slices.Clone(hostPorts)
	slices.SortFunc(hps, func(a, b HostPort) int {
		return strings.Compare(hostPortKey(a), hostPortKey(b))
	})
	for _, hp := range hps {
		pod := ipv4(hp.PodIP)
		if pod == "" || hp.HostPort <= 0 || hp.PodPort <= 0 {
			continue
		}
		proto := hp.Protocol.iptables()
		dst := ""
		if h := ipv4(hp.HostIP); h != "" {
			dst = " -d " + h + "/32"
		}
		c := comment(fmt.Sprintf("hostPort %d/%s to %s:%d", hp.HostPort, proto, pod, hp.PodPort))
		fmt.Fprintf(&d.nat, "-A %s%s -s %s/32 -p %s -m comment --comment %s -m %s --dport %d -j %s\n",
			chainHostPorts, dst, pod, proto, c, proto, hp.HostPort, chainMarkMasq)
		fmt.Fprintf(&d.nat, "-A %s%s -p %s -m comment --comment %s -m %s --dport %d -j DNAT --to-destination %s:%d\n",
			chainHostPorts, dst, proto, c, proto, hp.HostPort, pod, hp.PodPort)
	}

	fmt.Fprintf(&d.nat, "-A %s -j MARK --or-mark %s\n", chainMarkMasq, markStr)
	fmt.Fprintf(&d.nat, "-A %s -m mark ! --mark %s/%s -j RETURN\n", chainPostrouting, markStr, markStr)
	// Clear the mark so a packet that passes POSTROUTING again (through a
	// tunnel, say) is not masqueraded twice.
	fmt.Fprintf(&d.nat, "-A %s -j MARK --xor-mark %s\n", chainPostrouting, markStr)
	fmt.Fprintf(&d.nat, "-A %s -m comment --comment %s -j MASQUERADE\n", chainPostrouting, comment("service traffic requiring SNAT"))
	return d
}

// buildIsolation adds the filter rules of the isolated namespaces: in
// CLOUDBOX-ISOLATION one jump per guarded pod address to its namespace's
// chain, which returns for the namespace's own pods and rejects the rest.
// Like build, its output depends only on the content of its input.
func (d *desired) buildIsolation(isolated []IsolatedNamespace) {
	type nsIPs struct {
		name string
		ips  []string
	}
	var list []nsIPs
	for _, n := range isolated {
		var ips []string
		for _, ip := range n.PodIPs {
			if s := ipv4(ip); s != "" && !slices.Contains(ips, s) {
				ips = append(ips, s)
			}
		}
		if len(ips) == 0 {
			continue
		}
		slices.SortFunc(ips, func(a, b string) int {
			return bytes.Compare(net.ParseIP(a).To4(), net.ParseIP(b).To4())
		})
		list = append(list, nsIPs{n.Name, ips})
	}
	if len(list) == 0 {
		return
	}
	slices.SortFunc(list, func(a, b nsIPs) int { return strings.Compare(a.name, b.name) })
	var chains bytes.Buffer
	fmt.Fprintf(&d.filter, "-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n", chainIsolation)
	for _, n := range list {
		c := chainHash(prefixIso, n.name)
		d.filterChains = append(d.filterChains, c)
		for _, ip := range n.ips {
			fmt.Fprintf(&d.filter, "-A %s -d %s/32 -m comment --comment %s -j %s\n", chainIsolation, ip, comment(n.name+" isolated"), c)
			fmt.Fprintf(&chains, "-A %s -s %s/32 -j RETURN\n", c, ip)
		}
		fmt.Fprintf(&chains, "-A %s -m comment --comment %s -j REJECT --reject-with icmp-port-unreachable\n", c, comment("only "+n.name+" may reach "+n.name))
	}
	d.filter.Write(chains.Bytes())
}

// sortedEndpoints returns the distinct IPv4 addresses of eps, sorted.
func sortedEndpoints(eps []Endpoint) []string {
	var ips []string
	for _, ep := range eps {
		if ip := ipv4(ep.IP); ip != "" && !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	slices.SortFunc(ips, func(a, b string) int {
		return bytes.Compare(net.ParseIP(a).To4(), net.ParseIP(b).To4())
	})
	return ips
}

// epPort returns the target port of the first endpoint with address ip.
func epPort(eps []Endpoint, ip string, sp ServicePort) int {
	for _, ep := range eps {
		if ipv4(ep.IP) == ip {
			return ep.targetPort(sp)
		}
	}
	return sp.Port
}

func hostPortKey(hp HostPort) string {
	return fmt.Sprintf("%s %s %05d %s %05d", hp.Protocol.iptables(), ipv4(hp.HostIP), hp.HostPort, ipv4(hp.PodIP), hp.PodPort)
}

// payload writes the iptables-restore input: desired rules, deletion of
// stale chains and fix, the lines that repair jumps from built-in chains.
func (d *desired) payload(natTable string, stale, staleFilter []string, fix []string) []byte {
	var b bytes.Buffer
	b.Grow(d.nat.Len() + d.filter.Len() + 64*len(d.natChains) + 1024)

	writeTable(&b, natTable, d.natChains, stale, d.nat.Bytes(), fix)
	writeTable(&b, "filter", d.filterChains, staleFilter, d.filter.Bytes(), fix)
	return b.Bytes()
}

// writeTable writes one table of the payload: its chains and the stale ones declared
// (which in --noflush mode creates or flushes them, so a stale chain is empty and can
// go), the rules, the deletion of the stale chains and the table's fix lines.
func writeTable(b *bytes.Buffer, table string, chains, stale []string, rules []byte, fix []string) {
	fmt.Fprintf(b, "*%s\n", table)
	for _, c := range chains {
		fmt.Fprintf(b, ":%s - [0:0]\n", c)
	}
	for _, c := range stale {
		fmt.Fprintf(b, ":%s - [0:0]\n", c)
	}
	b.Write(rules)
	for _, c := range stale {
		fmt.Fprintf(b, "-X %s\n", c)
	}
	writeFix(b, table, fix)
	b.WriteString("COMMIT\n")
}

// writeFix writes the lines of fix that are for table.
func writeFix(b *bytes.Buffer, table string, fix []string) {
	for _, l := range fix {
		if rest, ok := strings.CutPrefix(l, table+" "); ok {
			b.WriteString(rest + "\n")
		}
	}
}
