package dns

import (
	"fmt"
	"strings"
)

// ResolvConf returns the /etc/resolv.conf of a pod in namespace, with nameserver (the
// node's DNS server address, without port) and the search path of the DefaultDomain:
// "web" finds web.NAMESPACE.svc.cluster.local, "web.shop" finds
// web.shop.svc.cluster.local. ndots:5 makes names with fewer than five dots try the
// search path first, as Kubernetes pods do.
func ResolvConf(nameserver, namespace string) []byte {
	return ResolvConfDomain(nameserver, namespace, DefaultDomain)
}

// ResolvConfDomain is ResolvConf for another cluster domain.
func ResolvConfDomain(nameserver, namespace, domain string) []byte {
	domain = strings.TrimSuffix(domain, ".")
	var b strings.Builder
	fmt.Fprintf(&b, "search %s.svc.%s svc.%s %s\n", namespace, domain, domain, domain)
	fmt.Fprintf(&b, "nameserver %s\n", nameserver)
	b.WriteString("options ndots:5\n")
	return []byte(b.String())
}
