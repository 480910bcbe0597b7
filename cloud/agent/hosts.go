package agent

import (
	"os"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Files the agent writes into every container of a pod.
const (
	etcHosts      = "/etc/hosts"
	etcHostname   = "/etc/hostname"
	etcResolvConf = "/etc/resolv.conf"
)

// podHostname is the name a pod's UTS namespace gets: spec.hostname or the pod's
// name, or the node's own name with hostNetwork.
func (a *Agent) podHostname(p *api.Pod) string {
	if p.Spec.HostNetwork {
		return a.cfg.Resources.Hostname
	}
	if p.Spec.Hostname != "" {
		return p.Spec.Hostname
	}
	return p.Name
}

// podFiles are /etc/hosts, /etc/hostname and /etc/resolv.conf of a pod.
func (a *Agent) podFiles(p *api.Pod, podIP string) map[string][]byte {
	hostname := a.podHostname(p)
	files := map[string][]byte{
		etcHostname:   []byte(hostname + "\n"),
		etcResolvConf: a.resolvConf(),
	}
	if a.cfg.Network != nil && !p.Spec.HostNetwork {
		if b := a.cfg.Network.ResolvConf(p.Namespace); b != nil {
			files[etcResolvConf] = b
		}
	}
	if p.Spec.HostNetwork {
		// A pod in the host's network sees the host's names, as with the kubelet.
		if b, err := os.ReadFile(a.cfg.HostsFile); err == nil {
			files[etcHosts] = b
			return files
		}
	}
	files[etcHosts] = []byte(hostsFile(p, hostname, podIP))
	return files
}

// hostsFile is the kubelet's managed hosts file. Until the network issue gives pods an
// address, the hostname resolves to loopback, so that software that looks up its own
// name (many JVMs do at start) still works in a loopback-only namespace.
func hostsFile(p *api.Pod, hostname, podIP string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file (cloudbox).\n")
	names := hostname
	if p.Spec.Subdomain != "" {
		names = hostname + "." + p.Spec.Subdomain + "." + p.Namespace + ".svc.cluster.local\t" + hostname
	}
	if podIP == "" {
		b.WriteString("127.0.0.1\tlocalhost\t" + names + "\n")
	} else {
		b.WriteString("127.0.0.1\tlocalhost\n")
	}
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	if podIP != "" {
		b.WriteString(podIP + "\t" + names + "\n")
	}
	return b.String()
}

// resolvConf is the host's resolver configuration, for host-network pods and for
// nodes without the cluster DNS.
func (a *Agent) resolvConf() []byte {
	b, err := os.ReadFile(a.cfg.ResolvConf)
	if err != nil {
		return []byte("# cloudbox: the host has no " + a.cfg.ResolvConf + "\n")
	}
	return b
}
