// Package container runs containers in-process with runc's libcontainer:
// the cloudbox binary re-executes itself as each container's init (see
// Init), so there is no runc binary, no shim and no monitor process per
// container. A Manager creates, starts, waits for, stops, execs into,
// destroys and, after an agent restart, recovers containers; pods are sets
// of namespaces kept alive by bind-mounted namespace files, which the
// containers of the pod join (see CreatePod).
//
// Per container: an overlayfs rootfs over image layers (or a given
// directory), Docker's default capabilities, masked and read-only /proc
// and /sys paths and device nodes, RLIMIT_NOFILE capped at the host's hard
// limit, an absolute cgroup under Config.CgroupParent with CPU, memory and
// PID limits (cgroup v1 and v2 through libcontainer's cgroupfs manager, no
// systemd), stdout and stderr to a rotated log file the container writes
// itself, and an exit status with 128+signal codes and OOM kills.
//
// The package knows nothing of the control plane: it takes Specs and IDs.
//
// Layout of Config.StateRoot:
//
//	libcontainer/<id>/          libcontainer's state.json (and exec.fifo until Start)
//	containers/<id>/
//	    container.json          the record: spec, pid, times, exit status
//	    rootfs/ upper/ work/    the overlay mount and its writable layers
//	    files/                  the container's injected files
//	pods/<pod>/
//	    pod.json
//	    ns/{net,ipc,uts}        bind-mounted namespace files
//	    shm/                    tmpfs shared as /dev/shm
//	    files/                  /etc/hosts, /etc/hostname, /etc/resolv.conf
//	logs/<id>.log[.N]           unless Config.LogRoot says elsewhere
//
// What a host needs: root, Linux ≥ 5.2 (fsopen for the overlay sealing of
// the binary; 6.8 adds one-layer-at-a-time overlay mounts), overlayfs, and
// a cgroup v1 or v2 hierarchy. No seccomp profile is applied (runc's
// seccomp support needs libseccomp through cgo), no AppArmor or SELinux
// labels, and no user namespaces: container root is host root with
// Docker's capability set.
package container
