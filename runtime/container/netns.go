package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Pods. Containers of one pod share network, IPC and UTS namespaces (and
// /dev/shm and the files /etc/hosts, /etc/hostname, /etc/resolv.conf).
// Kubernetes runtimes keep those namespaces alive with a "pause" container
// per pod; cloudbox keeps them without any process: CreatePod unshares
// them on a throw-away OS thread and bind-mounts the thread's
// /proc/thread-self/ns/{net,ipc,uts} onto files under
// StateRoot/pods/<pod>/ns. A bind-mounted namespace file keeps the
// namespace alive on its own, survives agent restarts, and every container
// of the pod joins it by path (setns), whichever container starts first
// and however often they restart. The network plugin gets Pod.NetNSPath to
// wire a veth into before the first container starts. RemovePod unmounts
// the files, which frees the namespaces once no container is left in them.
//
// Layout of StateRoot/pods/<pod>:
//
//	pod.json            PodConfig minus Files
//	ns/net ns/ipc ns/uts   namespace bind mounts (net and uts absent with HostNetwork)
//	shm/                tmpfs shared as /dev/shm by the pod's containers
//	files/              /etc/hosts, /etc/hostname, /etc/resolv.conf, ...

// PodConfig describes the shared part of a pod.
type PodConfig struct {
	// ID names the pod, with the same rules as a container ID.
	ID string
	// Hostname is set in the pod's UTS namespace; "" means the pod ID
	// (cut to 63 bytes).
	// Must be empty with HostNetwork.
	Hostname string
	// HostNetwork keeps the host's network and UTS namespaces (the pod
	// still gets an IPC namespace of its own), like hostNetwork in
	// Kubernetes.
	HostNetwork bool
	// Files are bind-mounted into every container of the pod, e.g.
	// "/etc/hosts", "/etc/resolv.conf". /etc/hostname is generated from
	// Hostname when absent (and not HostNetwork).
	Files map[string][]byte
	// ShmBytes sizes the pod's /dev/shm; 0 means 64 MiB.
	ShmBytes int64
}

// Pod is a pod's namespaces and files.
type Pod struct {
	ID          string
	Hostname    string
	HostNetwork bool
	// NetNSPath is the network namespace to put interfaces in ("" with
	// HostNetwork); IPCNSPath and UTSNSPath likewise.
	NetNSPath, IPCNSPath, UTSNSPath string
	// Dir is the pod's directory under StateRoot.
	Dir string

	shmDir string
	files  map[string]string // destination → host file
}

type podRecord struct {
	ID          string            `json:"id"`
	Hostname    string            `json:"hostname"`
	HostNetwork bool              `json:"hostNetwork,omitempty"`
	Files       map[string]string `json:"files,omitempty"` // destination → host file
}

func (p *Pod) nsConfig() nsConfig {
	return nsConfig{
		hostNetwork: p.HostNetwork,
		netPath:     p.NetNSPath,
		ipcPath:     p.IPCNSPath,
		utsPath:     p.UTSNSPath,
		shmDir:      p.shmDir,
		hostname:    p.Hostname,
	}
}

func (m *Manager) podDir(id string) string { return filepath.Join(m.podRoot, id) }

// CreatePod creates the pod's namespaces, /dev/shm and files. It is
// idempotent: for an existing pod it returns the pod as it is.
func (m *Manager) CreatePod(cfg PodConfig) (_ *Pod, retErr error) {
	if err := validateID(cfg.ID); err != nil {
		return nil, err
	}
	if len(cfg.Hostname) > 64 {
		return nil, fmt.Errorf("pod %s: hostname longer than 64 bytes: %w", cfg.ID, ErrInvalid)
	}
	if cfg.HostNetwork && cfg.Hostname != "" {
		return nil, fmt.Errorf("pod %s: a host-network pod has the host's hostname: %w", cfg.ID, ErrInvalid)
	}
	for p := range cfg.Files {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			return nil, fmt.Errorf("pod %s: file path %q: %w", cfg.ID, p, ErrInvalid)
		}
	}
	defer m.pods.Lock(cfg.ID)()
	if p, err := m.loadPod(cfg.ID); err == nil {
		return p, nil
	}
	dir := m.podDir(cfg.ID)
	if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o711); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			m.removePodDir(cfg.ID)
		}
	}()
	rec := podRecord{ID: cfg.ID, Hostname: cfg.Hostname, HostNetwork: cfg.HostNetwork}
	if rec.Hostname == "" && !cfg.HostNetwork {
		rec.Hostname = defaultHostname(cfg.ID)
	}

	files := cfg.Files
	if _, ok := files["/etc/hostname"]; !ok && !cfg.HostNetwork {
		files = make(map[string][]byte, len(cfg.Files)+1)
		for k, v := range cfg.Files {
			files[k] = v
		}
		files["/etc/hostname"] = []byte(rec.Hostname + "\n")
	}
	var err error
	if rec.Files, err = writeFiles(filepath.Join(dir, "files"), files); err != nil {
		return nil, fmt.Errorf("pod %s: files: %w", cfg.ID, err)
	}

	shm := filepath.Join(dir, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return nil, err
	}
	size := cfg.ShmBytes
	if size <= 0 {
		size = 64 << 20
	}
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("mode=1777,size=%d", size)); err != nil {
		return nil, fmt.Errorf("pod %s: mount shm: %w", cfg.ID, err)
	}

	kinds := []string{"ipc"}
	flags := unix.CLONE_NEWIPC
	if !cfg.HostNetwork {
		kinds = append(kinds, "net", "uts")
		flags |= unix.CLONE_NEWNET | unix.CLONE_NEWUTS
	}
	for _, k := range kinds {
		f, err := os.OpenFile(filepath.Join(dir, "ns", k), os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	if err := unshareAndPin(flags, rec.Hostname, filepath.Join(dir, "ns"), kinds); err != nil {
		return nil, fmt.Errorf("pod %s: namespaces: %w", cfg.ID, err)
	}

	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "pod.json"), b, 0o600); err != nil {
		return nil, err
	}
	return m.podFromRecord(&rec), nil
}

// unshareAndPin creates the namespaces on a dedicated OS thread, sets them
// up from inside (hostname, loopback up) and bind-mounts them onto
// nsDir/<kind>. net, ipc and uts may be unshared by one thread of a
// multi-threaded process (unlike mount and user namespaces). The thread is
// never unlocked, so Go ends it when the goroutine returns instead of
// reusing it in the pod's namespaces; except the main thread, which Go
// parks instead of ending, leaving the process's /proc/self/ns/* pointing
// at the pod: so the work never runs there.
func unshareAndPin(flags int, hostname, nsDir string, kinds []string) error {
	errc := make(chan error, 1)
	var work func()
	work = func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Hold the main thread while a new goroutine does the work:
			// it cannot be scheduled on a thread locked to us. The main
			// thread itself is left as it was and unlocked.
			done := make(chan struct{})
			go func() { work(); close(done) }()
			<-done
			runtime.UnlockOSThread()
			return
		}
		errc <- func() error {
			if err := unix.Unshare(flags); err != nil {
				return os.NewSyscallError("unshare", err)
			}
			if flags&unix.CLONE_NEWUTS != 0 {
				if err := unix.Sethostname([]byte(hostname)); err != nil {
					return os.NewSyscallError("sethostname", err)
				}
			}
			if flags&unix.CLONE_NEWNET != 0 {
				if err := loopbackUp(); err != nil {
					return err
				}
			}
			for _, k := range kinds {
				if err := unix.Mount("/proc/thread-self/ns/"+k, filepath.Join(nsDir, k), "", unix.MS_BIND, ""); err != nil {
					return fmt.Errorf("bind-mount %s namespace: %w", k, err)
				}
			}
			return nil
		}()
	}
	go work()
	return <-errc
}

// loopbackUp brings lo up in the calling thread's network namespace, as
// libcontainer does for a container's own one.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return os.NewSyscallError("SIOCGIFFLAGS", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return os.NewSyscallError("SIOCSIFFLAGS", err)
	}
	return nil
}

// GetPod returns a pod made by CreatePod (by this or an earlier Manager).
func (m *Manager) GetPod(id string) (*Pod, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	return m.loadPod(id)
}

func (m *Manager) loadPod(id string) (*Pod, error) {
	b, err := os.ReadFile(filepath.Join(m.podDir(id), "pod.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pod %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var rec podRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("pod %s: corrupt pod.json: %w", id, err)
	}
	return m.podFromRecord(&rec), nil
}

func (m *Manager) podFromRecord(rec *podRecord) *Pod {
	dir := m.podDir(rec.ID)
	p := &Pod{
		ID:          rec.ID,
		Hostname:    rec.Hostname,
		HostNetwork: rec.HostNetwork,
		IPCNSPath:   filepath.Join(dir, "ns", "ipc"),
		Dir:         dir,
		shmDir:      filepath.Join(dir, "shm"),
		files:       rec.Files,
	}
	if !rec.HostNetwork {
		p.NetNSPath = filepath.Join(dir, "ns", "net")
		p.UTSNSPath = filepath.Join(dir, "ns", "uts")
	}
	return p
}

// RemovePod releases the pod's namespaces, /dev/shm and files, and its
// cgroup level. Its containers must be destroyed first.
func (m *Manager) RemovePod(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	states, err := m.List()
	if err != nil {
		return err
	}
	for _, st := range states {
		if st.Pod == id {
			return fmt.Errorf("pod %s: container %s still exists: %w", id, st.ID, ErrConflict)
		}
	}
	defer m.pods.Lock(id)()
	if _, err := os.Stat(m.podDir(id)); err != nil {
		return fmt.Errorf("pod %s: %w", id, ErrNotFound)
	}
	if err := m.removePodDir(id); err != nil {
		return err
	}
	m.removePodCgroups(id)
	return nil
}

func (m *Manager) removePodDir(id string) error {
	dir := m.podDir(id)
	for _, p := range []string{"ns/net", "ns/ipc", "ns/uts", "shm"} {
		if err := unmountAll(filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("pod %s: %w", id, err)
		}
	}
	return os.RemoveAll(dir)
}
