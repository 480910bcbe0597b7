package container

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	// The nsenter package registers a cgo constructor (nsexec) that runs before
	// the Go runtime starts. In a process started as a container init it joins
	// or creates the namespaces while the process is still single-threaded,
	// which Go cannot do once its runtime threads exist; in every other process
	// it returns at once because _LIBCONTAINER_INITPIPE is not set.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// initPipeEnv is set by libcontainer in the environment of the processes it
// starts as container inits; nothing else sets it.
const initPipeEnv = "_LIBCONTAINER_INITPIPE"

// Init turns this process into a container init when libcontainer started it
// as one, and never returns in that case; otherwise it returns at once.
//
// libcontainer starts every container (and every Exec) by re-executing the
// current binary through a sealed copy of /proc/self/exe with the argv
// [os.Args[0], "init"] and an environment that holds only GOMAXPROCS and the
// _LIBCONTAINER_* variables (the pipes it talks over, the init type, the log
// level). So main must call Init before anything else, before flag parsing
// and before starting goroutines or servers:
//
//	func main() {
//		if len(os.Args) > 1 && os.Args[1] == "init" {
//			container.Init()
//		}
//		...
//	}
//
// Init checks the environment too, so a CLI subcommand that happens to be
// called "init" still works: Init returns and main goes on. Package-level
// init functions of everything the binary imports run before main and hence
// on every container start; keep them cheap.
//
// CVE-2019-5736 (a container overwriting the runtime binary through
// /proc/self/exe): runc v1.5's libcontainer seals the binary on every start
// by itself (exeseal.CloneSelfExe, called for each Start, Run and Exec).
// It first mounts a private read-only overlayfs whose lower layers are the
// binary's directory and the container's state directory, and execs the
// binary through it: no copy, nothing to unwrap. Only if that mount fails
// does it copy the whole binary into a sealed memfd, on every start. The
// mount fails (ELOOP) when one lower directory contains the other, i.e.
// when the state root lies inside the binary's directory; New warns then.
// Measured here (8 MB test binary, 2 shared vCPUs): overlay sealing
// 0.5–1.4 ms, the memfd copy 5.6–6.3 ms and 8 MB of memory per start (it
// grows with the binary). We keep the overlay (safe and zero-copy) and do
// not pre-seal the agent by re-executing it from a memfd once at startup,
// which would pin a copy of the whole binary in memory for the agent's
// lifetime. A whole create → start → wait → destroy of busybox `true`
// takes 20–42 ms here (BenchmarkRunBusybox, shared and noisy machine),
// 0.83–0.99 times bare `runc run` measured in the same runs; most of it is
// the kernel attaching the init to the ten cgroup v1 hierarchies (8–24 ms:
// an attach may wait for an RCU grace period), which runc pays too.
func Init() {
	if os.Getenv(initPipeEnv) == "" {
		return
	}
	// libcontainer.Init locks the thread, finishes the container setup the
	// C constructor started and execs the container's process; it returns
	// only on failure, after which it exits with status 255 itself.
	libcontainer.Init()
	os.Exit(255)
}

// exeSealOverlaps reports whether libcontainer's sealing overlay would fail
// for state directories under lcRoot, making libcontainer copy the whole
// binary into a memfd on every container start (see Init): the overlay
// takes the binary's directory and the container's state directory as its
// two lower layers, and overlayfs refuses (ELOOP) layers that contain one
// another.
func exeSealOverlaps(lcRoot string) (exe string, overlaps bool) {
	exe, err := os.Executable()
	if err != nil {
		return "", false
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return exe, within(lcRoot, filepath.Dir(exe))
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
