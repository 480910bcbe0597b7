package container

import (
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadOnlyRootfsRefusesWrites(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sh", "-c", "touch /newfile && echo wrote")
	s.ReadOnlyRootfs = true
	s.Mounts = []Mount{{Type: MountTmpfs, Destination: "/scratch"}}
	exit, log := run(t, m, s)
	if exit.Code == 0 || strings.Contains(log, "wrote") || !strings.Contains(log, "Read-only file system") {
		t.Errorf("exit %+v, log %q: want the write refused", exit, log)
	}
	s2 := busybox(t, "sh", "-c", "touch /scratch/f && echo wrote")
	s2.ReadOnlyRootfs = true
	s2.Mounts = []Mount{{Type: MountTmpfs, Destination: "/scratch"}}
	if exit, log := run(t, m, s2); exit.Code != 0 || log != "wrote\n" {
		t.Errorf("tmpfs in a read-only rootfs: exit %+v, log %q", exit, log)
	}
}

func TestRunAsUser(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	for _, user := range []string{"1000", "app", "1000:1000"} {
		s := busybox(t, "sh", "-c", "id -u; id -g; echo $HOME")
		s.User = user
		exit, log := run(t, m, s)
		if exit.Code != 0 || log != "1000\n1000\n/home/app\n" {
			t.Errorf("user %q: exit %+v, log %q", user, exit, log)
		}
	}
	s := busybox(t, "id", "-u")
	s.User = "nosuchuser"
	if _, err := m.Create(testContext(t), s); err == nil {
		t.Errorf("unknown user accepted")
	}
}

func TestDefaultCapabilitiesAndDrop(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	// Docker's default set keeps CHOWN but not SYS_ADMIN.
	exit, log := run(t, m, busybox(t, "sh", "-c", "chown 1000 /tmp && echo chown ok; mount -t tmpfs none /mnt && echo mount ok"))
	if !strings.Contains(log, "chown ok") || strings.Contains(log, "mount ok") {
		t.Errorf("defaults: exit %+v, log %q", exit, log)
	}
	// CapEff is exactly Docker's 14 capabilities.
	_, log = run(t, m, busybox(t, "sh", "-c", "grep CapEff /proc/self/status"))
	if got := capCount(t, log); got != len(defaultCapabilities) {
		t.Errorf("CapEff %q has %d capabilities, want %d", log, got, len(defaultCapabilities))
	}
	s := busybox(t, "sh", "-c", "chown 1000 /tmp && echo chown ok")
	s.CapDrop = []string{"chown"}
	exit, log = run(t, m, s)
	if exit.Code == 0 || strings.Contains(log, "chown ok") || !strings.Contains(log, "Operation not permitted") {
		t.Errorf("CapDrop CHOWN: exit %+v, log %q", exit, log)
	}
	s = busybox(t, "sh", "-c", "mount -t tmpfs none /mnt && echo mount ok")
	s.CapAdd = []string{"CAP_SYS_ADMIN"}
	if exit, log := run(t, m, s); exit.Code != 0 || log != "mount ok\n" {
		t.Errorf("CapAdd SYS_ADMIN: exit %+v, log %q", exit, log)
	}
}

// capCount counts the bits of "CapEff:\t<hex>".
func capCount(t *testing.T, line string) int {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 2 {
		t.Fatalf("CapEff line %q", line)
	}
	v, err := strconv.ParseUint(f[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

func TestPrivileged(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sh", "-c", "mount -t tmpfs none /mnt && echo mount ok; grep CapEff /proc/self/status; [ $(head -c 1 /proc/timer_list | wc -c) = 1 ] && echo timer_list visible; grep ' /sys ' /proc/mounts")
	s.Privileged = true
	exit, log := run(t, m, s)
	if exit.Code != 0 || !strings.Contains(log, "mount ok") || !strings.Contains(log, "timer_list visible") || !strings.Contains(log, "sysfs rw") {
		t.Fatalf("privileged: exit %+v, log %q; want mount allowed, nothing masked, /sys rw", exit, log)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "CapEff") && capCount(t, line) != len(availableCapabilities()) {
			t.Errorf("privileged %q: want all %d capabilities of the test process", line, len(availableCapabilities()))
		}
	}
}

func TestMaskedAndReadOnlyPaths(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	s := busybox(t, "sh", "-c", `
		[ $(head -c 1 /proc/timer_list | wc -c) = 1 ] && echo timer_list visible
		echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo proc-sys writable
		touch /sys/x 2>/dev/null && echo sys writable
		ls /dev | tr '\n' ' '`)
	exit, log := run(t, m, s)
	if exit.Code != 0 {
		t.Fatalf("exit %+v, log %q", exit, log)
	}
	for _, bad := range []string{"timer_list visible", "proc-sys writable", "sys writable"} {
		if strings.Contains(log, bad) {
			t.Errorf("log %q: %s", log, bad)
		}
	}
	// A tmpfs /dev with the default nodes only.
	for _, dev := range []string{"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"} {
		if !strings.Contains(" "+log, " "+dev+" ") {
			t.Errorf("/dev lacks %s: %q", dev, log)
		}
	}
	for _, dev := range []string{"vda", "sda", "kvm", "mem "} {
		if strings.Contains(log, dev) {
			t.Errorf("/dev has host device %s: %q", dev, log)
		}
	}
}

func TestRlimitNofileNotAboveHost(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	exit, log := run(t, m, busybox(t, "sh", "-c", "ulimit -n; ulimit -Hn"))
	want := strconv.FormatUint(hostNofileLimit(), 10)
	if exit.Code != 0 || log != want+"\n"+want+"\n" {
		t.Errorf("exit %+v, log %q, want %s twice", exit, log, want)
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if got := hostNofileLimit(); got > rl.Max || got > maxNofile {
		t.Errorf("limit %d above the host's hard limit %d or %d", got, rl.Max, maxNofile)
	}
}
