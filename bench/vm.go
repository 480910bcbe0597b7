package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/hypervisor"
	"github.com/cloudbox/cloudbox/internal/testguest"
)

// VMConfig configures the VM benchmark.
type VMConfig struct {
	// Binary is the cloudbox executable to start as the server.
	Binary string
	// Runs is how many sequential boots of each kind (bare QEMU, cloudbox) are timed.
	// If zero, 5.
	Runs int
	// Burst is how many VMs the burst phase creates at once. If zero, 10.
	Burst int
	// MemoryMB is every VM's memory, on both sides. If zero, 128.
	MemoryMB int
	// Out receives the report.
	Out io.Writer
}

const (
	vmBenchCgroup = "/cloudbox-bench-vm"
	vmBenchImage  = "bench-guest"
	vmBenchFlavor = "bench-vm"
	// consolePoll is how often both sides' console files are read: the same interval
	// for bare QEMU and for cloudbox, so detection costs each the same (5 ms on
	// average) and cancels out of the difference.
	consolePoll = 10 * time.Millisecond
	// vmBootTimeout bounds one boot to the marker; TCG on a busy machine is slow.
	vmBootTimeout = 3 * time.Minute
)

// VM measures, in one run: bare qemu-system-x86_64 booting the test guest's kernel
// and initrd under TCG, from exec to the guest's first console line, beside
// `cloudbox vm create` of the same guest, from the create call to the same line
// (target: cloudbox adds <= 150 ms at p50); then cfg.Burst VMs created at once, until
// every one is ACTIVE and its console says the guest is ready, beside as many bare
// QEMUs started at once. Needs root and QEMU; it starts its own server on a bridge
// and cluster CIDR of its own, and removes it afterwards.
func VM(ctx context.Context, cfg VMConfig) (err error) {
	if cfg.Runs == 0 {
		cfg.Runs = 5
	}
	if cfg.Burst == 0 {
		cfg.Burst = 10
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 128
	}
	out := cfg.Out
	if os.Geteuid() != 0 {
		return errors.New("the VM benchmark needs root (the server makes taps, a bridge and cgroups)")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return errors.New("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
	}
	guest, err := testguest.BuildDir(ctx)
	if err != nil {
		return fmt.Errorf("the test guest: %w", err)
	}
	dir, err := os.MkdirTemp("", "cloudbox-bench-vm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(out, "VM benchmark: the test guest (kernel + initrd) under TCG, %d MiB, 1 vCPU\n", cfg.MemoryMB)

	srvDir := filepath.Join(dir, "server")
	bridge := fmt.Sprintf("cbxbvm%d", os.Getpid()%100000)
	srv, _, err := startServer(ctx, cfg.Binary, srvDir, vmBenchCgroup, "--vm-accel", "tcg",
		"--pod-network", "bridge", "--bridge", bridge, "--cluster-cidr", "10.246.0.0/16", "--service-cidr", "10.99.0.0/16")
	if err != nil {
		return err
	}
	b := &vmBench{cfg: cfg, qemu: qemu, guest: guest, dir: dir, cl: srv.client}
	defer func() {
		cctx := context.WithoutCancel(ctx)
		if cerr := b.deleteInstances(cctx); cerr != nil {
			fmt.Fprintf(os.Stderr, "bench vm: cleaning up instances: %v\n", cerr)
		}
		srv.remove()
		if pids := killQEMUsUnder(dir); len(pids) > 0 {
			err = errors.Join(err, fmt.Errorf("QEMU processes of this benchmark were still running after clean-up and were killed: %v", pids))
		}
	}()
	if err := b.setUp(ctx); err != nil {
		return err
	}
	if err := b.sequential(ctx); err != nil {
		return err
	}
	return b.burst(ctx)
}

// vmBench is one run of the VM benchmark against one server.
type vmBench struct {
	cfg       VMConfig
	qemu      string
	guest     *testguest.Guest
	dir       string
	cl        *client.Client
	instances client.Typed[*api.Instance] // the instances in default, for the poll loops
}

// setUp imports the guest as a kernel image, makes the flavor and starts following
// the instances.
func (b *vmBench) setUp(ctx context.Context) error {
	img := client.NewObject[*api.Image]()
	img.Name = vmBenchImage
	img.Spec = api.ImageSpec{Type: api.ImageTypeKernel, Cmdline: b.guest.Cmdline}
	var files []client.ImageFileUpload
	for _, f := range []struct{ role, path string }{{api.ImageFileKernel, b.guest.Kernel}, {api.ImageFileInitrd, b.guest.Initrd}} {
		fh, err := os.Open(f.path)
		if err != nil {
			return err
		}
		defer fh.Close()
		st, err := fh.Stat()
		if err != nil {
			return err
		}
		files = append(files, client.ImageFileUpload{Role: f.role, Content: fh, Size: st.Size()})
	}
	if _, err := b.cl.ImportImage(ctx, img, files, nil); err != nil {
		return fmt.Errorf("importing the guest as image %s: %w", vmBenchImage, err)
	}
	fl := client.NewObject[*api.Flavor]()
	fl.Name = vmBenchFlavor
	fl.Spec = api.FlavorSpec{VCPUs: 1, RAMMB: b.cfg.MemoryMB, DiskGB: 0}
	if _, err := b.cl.Create(ctx, fl); err != nil {
		return fmt.Errorf("creating flavor %s: %w", vmBenchFlavor, err)
	}
	b.instances = client.AsTyped[*api.Instance](client.NewInformer(b.cl, api.KindOfType[*api.Instance](), "default", client.ListOptions{}, zap.NewNop()))
	if !client.StartInformers(ctx, b.instances.Informer) {
		return ctx.Err()
	}
	return nil
}

// instanceSeen is the named instance as the informer last saw it, or nil.
func (b *vmBench) instanceSeen(name string) *api.Instance {
	in, _ := b.instances.GetByName("default", name)
	return in
}

// sequential times single boots to the marker, bare and through cloudbox in turn,
// so that whatever else loads the machine falls on both alike; which of the two goes
// first alternates, so that neither always follows the other's tear-down. One boot of
// each goes first, uncounted: it fills the page cache, and the node fetches the image.
func (b *vmBench) sequential(ctx context.Context) error {
	var bare, cbx, cbxQEMU []time.Duration
	var first time.Duration
	for i := -1; i < b.cfg.Runs; i++ {
		var d, c, q time.Duration
		bareRun := func() (err error) {
			if d, err = b.bareBoot(ctx, filepath.Join(b.dir, "bare-"+strconv.Itoa(i+1))); err != nil {
				return fmt.Errorf("bare qemu (the peer): %w", err)
			}
			return nil
		}
		cloudboxRun := func() (err error) {
			if c, q, err = b.cloudboxBoot(ctx, fmt.Sprintf("bench-vm-%d", i+1)); err != nil {
				return fmt.Errorf("cloudbox: %w", err)
			}
			return nil
		}
		runs := []func() error{bareRun, cloudboxRun}
		if i%2 != 0 {
			runs[0], runs[1] = runs[1], runs[0]
		}
		for _, run := range runs {
			if err := run(); err != nil {
				return err
			}
		}
		if i < 0 {
			first = c
			continue
		}
		bare, cbx, cbxQEMU = append(bare, d), append(cbx, c), append(cbxQEMU, q)
	}
	bareP50, cbxP50 := percentile(bare, 50), percentile(cbx, 50)
	out := b.cfg.Out
	fmt.Fprintf(out, "boot to %q on the serial console, %d runs each (one uncounted warm-up before):\n", testguest.Marker, b.cfg.Runs)
	fmt.Fprintf(out, "  bare qemu-system-x86_64, exec -> marker:  p50 %7.1f ms (min %.1f, max %.1f)\n",
		ms(bareP50), ms(percentile(bare, 0)), ms(percentile(bare, 100)))
	fmt.Fprintf(out, "  cloudbox vm create, create -> marker:     p50 %7.1f ms (min %.1f, max %.1f; the warm-up, which fetched the image to the node: %.1f)\n",
		ms(cbxP50), ms(percentile(cbx, 0)), ms(percentile(cbx, 100)), ms(first))
	fmt.Fprintf(out, "  cloudbox adds %.1f ms at p50 (target <= 150 ms); ratio %.3f\n", ms(cbxP50-bareP50), float64(cbxP50)/float64(bareP50))
	pidP50 := percentile(cbxQEMU, 50)
	fmt.Fprintf(out, "  cloudbox's part before the guest runs, create -> status.pid set: p50 %.1f ms (free of the boot's jitter; includes QEMU's start-up, which bare pays too); ratio to the bare boot %.3f\n",
		ms(pidP50), float64(pidP50)/float64(bareP50))
	return nil
}

// bareBoot starts QEMU as one would by hand and returns the time from exec until the
// marker is on its console; QEMU is killed before it returns.
func (b *vmBench) bareBoot(ctx context.Context, dir string) (time.Duration, error) {
	v, err := b.startBare(dir, "")
	if err != nil {
		return 0, err
	}
	defer v.kill()
	var took time.Duration
	err = pollEvery(ctx, vmBootTimeout, "bare qemu to "+testguest.Marker, func() (bool, error) {
		ok, err := v.has(testguest.Marker)
		if ok {
			took = time.Since(v.start)
		}
		return ok, err
	})
	return took, err
}

// cloudboxBoot creates an instance and returns the time from the create call until
// the marker is on its console, and until its status first shows QEMU's PID; then it
// waits for the guest to be ready and deletes the instance.
//
// The console is read from the file the instance's status.consoleLog names (QEMU's
// serial logfile; the benchmark runs on the node), polled every consolePoll, as the
// bare peer's -serial file: is. The API's log stream would be the user's view, but the
// VM driver's follow polls every 200 ms, which would charge cloudbox for up to 200 ms
// of detection the peer does not pay. The path appears in the status as soon as QEMU
// has started, seconds before the guest prints anything.
func (b *vmBench) cloudboxBoot(ctx context.Context, name string) (marker, qemu time.Duration, err error) {
	start := time.Now()
	if _, err := b.cl.Create(ctx, b.instance(name)); err != nil {
		return 0, 0, fmt.Errorf("creating instance %s: %w", name, err)
	}
	var con *consoleFile
	err = pollEvery(ctx, vmBootTimeout, "instance "+name+" to "+testguest.Marker, func() (bool, error) {
		if in := b.instanceSeen(name); qemu == 0 && in != nil && in.Status.PID != 0 {
			qemu = time.Since(start)
		}
		ok, err := b.consoleHas(name, &con, testguest.Marker)
		if ok {
			marker = time.Since(start)
		}
		return ok, err
	})
	if err != nil {
		return 0, 0, err
	}
	// The guest's acpid, which answers the ACPI power button a deletion presses, starts
	// just before the ready line; deleting earlier would cost the launcher's whole grace.
	err = pollEvery(ctx, vmBootTimeout, "instance "+name+" to "+testguest.Ready, func() (bool, error) {
		return b.consoleHas(name, &con, testguest.Ready)
	})
	if err != nil {
		return 0, 0, err
	}
	return marker, qemu, b.deleteInstances(ctx)
}

// consoleHas says whether the named instance's console shows line, opening *con
// once the instance's status names its console file; an instance in ERROR is an error.
func (b *vmBench) consoleHas(name string, con **consoleFile, line string) (bool, error) {
	in := b.instanceSeen(name)
	if in == nil {
		return false, nil
	}
	if in.Status.State == api.InstanceError {
		return false, fmt.Errorf("instance %s is in ERROR: %s: %s", name, in.Status.Reason, in.Status.Message)
	}
	if *con == nil {
		if in.Status.ConsoleLog == "" {
			return false, nil
		}
		*con = &consoleFile{path: in.Status.ConsoleLog}
	}
	return (*con).has(line), nil
}

// burst starts cfg.Burst bare QEMUs at once and waits until each guest is ready, then
// creates as many instances at once and waits until each is ACTIVE and its guest ready.
func (b *vmBench) burst(ctx context.Context) error {
	n := b.cfg.Burst
	out := b.cfg.Out
	fmt.Fprintf(out, "burst: %d VMs of %d MiB at once, each until its console shows %q:\n", n, b.cfg.MemoryMB, testguest.Ready)
	bareTotal, bareEach, err := b.bareBurst(ctx, n)
	if err != nil {
		return fmt.Errorf("bare qemu burst (the peer): %w", err)
	}
	fmt.Fprintf(out, "  bare qemu-system-x86_64 x %d (with a seed cdrom), exec -> ready: %6.2f s total, per VM p50 %.2f s, max %.2f s\n",
		n, bareTotal.Seconds(), percentile(bareEach, 50).Seconds(), percentile(bareEach, 100).Seconds())

	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-burst-%d", i)
	}
	start := time.Now()
	errs := make(chan error, n)
	for _, name := range names {
		go func() {
			_, err := b.cl.Create(ctx, b.instance(name))
			errs <- err
		}()
	}
	for range names {
		if err := <-errs; err != nil {
			return fmt.Errorf("creating a burst instance: %w", err)
		}
	}
	each := make([]time.Duration, n)
	cons := make([]*consoleFile, n)
	err = pollEvery(ctx, 10*time.Minute, fmt.Sprintf("%d instances to ACTIVE and %s", n, testguest.Ready), func() (bool, error) {
		done := true
		for i, name := range names {
			if each[i] > 0 {
				continue
			}
			ready, err := b.consoleHas(name, &cons[i], testguest.Ready)
			if err != nil {
				return false, err
			}
			if in := b.instanceSeen(name); ready && in.Status.State == api.InstanceActive {
				each[i] = time.Since(start)
				continue
			}
			done = false
		}
		return done, nil
	})
	if err != nil {
		return err
	}
	total := percentile(each, 100)
	fmt.Fprintf(out, "  cloudbox vm create x %d, create -> ACTIVE and ready:             %6.2f s total, per VM p50 %.2f s, max %.2f s\n",
		n, total.Seconds(), percentile(each, 50).Seconds(), total.Seconds())
	fmt.Fprintf(out, "  cloudbox adds %.2f s to the total; ratio %.2f\n", (total - bareTotal).Seconds(), float64(total)/float64(bareTotal))
	return b.deleteInstances(ctx)
}

// bareBurst starts n bare QEMUs one right after the other and returns the time until
// the last guest is ready and each one's time. Each gets a NoCloud seed on a cdrom, as
// cloudbox gives its VMs: without one the guest looks for a seed for 5 s before it
// says it is ready. It has no network card; cloudbox's tap and address are part of
// what cloudbox costs.
func (b *vmBench) bareBurst(ctx context.Context, n int) (time.Duration, []time.Duration, error) {
	vms := make([]*bareVM, 0, n)
	defer func() {
		for _, v := range vms {
			v.kill()
		}
	}()
	for i := range n {
		d := filepath.Join(b.dir, fmt.Sprintf("bare-burst-%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return 0, nil, err
		}
		seed := filepath.Join(d, "seed.iso")
		if err := hypervisor.WriteSeed(seed, hypervisor.Seed{Hostname: fmt.Sprintf("bare-%d", i)}); err != nil {
			return 0, nil, err
		}
		v, err := b.startBare(d, seed)
		if err != nil {
			return 0, nil, err
		}
		vms = append(vms, v)
	}
	start := vms[0].start
	each := make([]time.Duration, n)
	err := pollEvery(ctx, 10*time.Minute, fmt.Sprintf("%d bare guests to %s", n, testguest.Ready), func() (bool, error) {
		done := true
		for i, v := range vms {
			if each[i] > 0 {
				continue
			}
			ok, err := v.has(testguest.Ready)
			if err != nil {
				return false, err
			}
			if ok {
				each[i] = time.Since(start)
				continue
			}
			done = false
		}
		return done, nil
	})
	return percentile(each, 100), each, err
}

// instance is a VM of the bench flavor and image on the pod network, as
// `cloudbox vm create NAME --image bench-guest --flavor bench-vm` makes it.
func (b *vmBench) instance(name string) *api.Instance {
	in := client.NewObject[*api.Instance]()
	in.Name, in.Namespace = name, "default"
	in.Spec = api.InstanceSpec{Image: vmBenchImage, Flavor: vmBenchFlavor, Networks: []string{api.NetworkPod}}
	return in
}

// deleteInstances deletes every instance in default and waits until their launcher
// pods, and with them the QEMUs, are gone.
func (b *vmBench) deleteInstances(ctx context.Context) error {
	instances, err := client.ListTyped[*api.Instance](ctx, b.cl, "default", client.ListOptions{})
	if err != nil {
		return err
	}
	for _, in := range instances {
		if _, err := client.Delete[*api.Instance](ctx, b.cl, "default", in.Name); err != nil && !client.IsNotFound(err) {
			return err
		}
	}
	if err := waitCount(ctx, b.cl, api.KindOfType[*api.Pod](), api.LabelInstance, 3*time.Minute, func(n int) bool { return n == 0 }); err != nil {
		return fmt.Errorf("waiting for the launcher pods to go: %w", err)
	}
	return nil
}

// bareVM is qemu-system-x86_64 started by hand with the guest's kernel and initrd.
type bareVM struct {
	cmd     *exec.Cmd
	stderr  bytes.Buffer
	exited  chan struct{}
	console consoleFile
	start   time.Time
}

// startBare starts QEMU with its serial console written to dir/console.log, and a
// seed ISO on a cdrom if seed is not empty.
func (b *vmBench) startBare(dir, seed string) (*bareVM, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	log := filepath.Join(dir, "console.log")
	args := []string{"-accel", "tcg", "-m", strconv.Itoa(b.cfg.MemoryMB), "-nodefaults", "-display", "none", "-no-reboot",
		"-kernel", b.guest.Kernel, "-initrd", b.guest.Initrd, "-append", b.guest.Cmdline, "-serial", "file:" + log}
	if seed != "" {
		args = append(args, "-blockdev", "driver=raw,node-name=seed,read-only=on,file.driver=file,file.filename="+seed,
			"-device", "ide-cd,drive=seed")
	}
	v := &bareVM{cmd: exec.Command(b.qemu, args...), exited: make(chan struct{}), console: consoleFile{path: log}}
	v.cmd.Stderr = &v.stderr
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = v.cmd.Wait(); close(v.exited) }()
	return v, nil
}

// has says whether line is on the console; a QEMU that has exited is an error.
func (v *bareVM) has(line string) (bool, error) {
	if v.console.has(line) {
		return true, nil
	}
	select {
	case <-v.exited:
		return false, fmt.Errorf("qemu exited before %q: %s", line, strings.TrimSpace(v.stderr.String()))
	default:
		return false, nil
	}
}

func (v *bareVM) kill() {
	_ = v.cmd.Process.Kill()
	<-v.exited
}

// consoleFile is a serial console's log file that QEMU appends to. A file not made
// yet reads as an empty console.
type consoleFile struct {
	path string
	text []byte
}

// has reads what was appended since the last call and says whether line has appeared.
func (c *consoleFile) has(line string) bool {
	f, err := os.Open(c.path)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(int64(len(c.text)), io.SeekStart); err == nil {
		more, _ := io.ReadAll(f)
		c.text = append(c.text, more...)
	}
	return bytes.Contains(c.text, []byte(line))
}

// pollEvery calls check at once and then every consolePoll until it returns true or
// an error, or timeout passes.
func pollEvery(ctx context.Context, timeout time.Duration, what string, check func() (bool, error)) error {
	tick := time.NewTicker(consolePoll)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if done, err := check(); done || err != nil {
			return err
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("%s: not within %s", what, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// killQEMUsUnder kills every QEMU whose command line names a path under dir (the
// bench's own, bare or started by its server) and returns their PIDs.
func killQEMUsUnder(dir string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		argv0, _, _ := bytes.Cut(b, []byte{0})
		if err != nil || !strings.Contains(filepath.Base(string(argv0)), "qemu") || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
