package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/testimage"
)

// TestComputeCLI drives the IaaS commands against one all-in-one server. No node
// runs VMs here, so instances stay in BUILD: what is checked is what the commands
// ask of the API.
func TestComputeCLI(t *testing.T) {
	c := startCluster(t)
	cfg, err := client.LoadConfigFile(c.config)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	instance := func(t *testing.T, name string) *api.Instance {
		t.Helper()
		o, err := cl.Get(ctx, instanceKind, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		return o.(*api.Instance)
	}

	t.Run("flavors", func(t *testing.T) {
		c := c.in(t)
		out := c.must("flavor", "list")
		for _, want := range []string{"NAME", "VCPUS", "m1.tiny", "512Mi", "m1.large", "8192Mi"} {
			if !strings.Contains(out, want) {
				t.Fatalf("flavor list lacks %q:\n%s", want, out)
			}
		}
		if out := c.must("flavor", "create", "c1.custom", "--vcpus", "2", "--ram", "1024", "--disk", "5"); !strings.Contains(out, "flavor/c1.custom created") {
			t.Fatalf("create: %s", out)
		}
		if out := c.must("get", "flavors", "c1.custom", "-o", "json"); !strings.Contains(out, `"ramMB": 1024`) {
			t.Fatalf("get flavor -o json:\n%s", out)
		}
		if msg := c.fails("flavor", "create", "huge", "--vcpus", "500", "--ram", "1024"); !strings.Contains(msg, "spec.vcpus: 500 must be between 1 and 128") {
			t.Fatalf("a flavor too big: %s", msg)
		}
		if out := c.must("flavor", "list", "-o", "name"); !strings.Contains(out, "flavor/c1.custom\n") {
			t.Fatalf("-o name: %s", out)
		}
		c.must("flavor", "delete", "c1.custom")
		if out := c.must("flavor", "list"); strings.Contains(out, "c1.custom") {
			t.Fatalf("deleted flavor still listed:\n%s", out)
		}
	})

	t.Run("keypairs", func(t *testing.T) {
		c := c.in(t)
		keyFile := filepath.Join(t.TempDir(), "id_me")
		out := c.must("keypair", "create", "me", "--private-key", keyFile)
		st, err := os.Stat(keyFile)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("private key file: %v %v", err, st)
		}
		pemBytes, _ := os.ReadFile(keyFile)
		signer, err := ssh.ParsePrivateKey(pemBytes)
		if err != nil {
			t.Fatalf("private key is not OpenSSH: %v", err)
		}
		fp := ssh.FingerprintSHA256(signer.PublicKey())
		if !strings.Contains(out, fp) {
			t.Fatalf("create does not show the fingerprint %s: %s", fp, out)
		}
		o, err := cl.Get(ctx, keypairKind, "default", "me")
		if err != nil {
			t.Fatal(err)
		}
		kp := o.(*api.KeyPair)
		stored, _, _, _, err := ssh.ParseAuthorizedKey([]byte(kp.Spec.PublicKey))
		if err != nil || !bytes.Equal(stored.Marshal(), signer.PublicKey().Marshal()) || kp.Status.Type != "ssh-ed25519" {
			t.Fatalf("stored key %q (%v) is not the file's", kp.Spec.PublicKey, err)
		}
		if msg := c.fails("keypair", "create", "again", "--private-key", keyFile); !strings.Contains(msg, "the file exists") {
			t.Fatalf("overwriting a key file: %s", msg)
		}
		if _, err := cl.Get(ctx, keypairKind, "default", "again"); !client.IsNotFound(err) {
			t.Fatalf("a refused create stored a key pair: %v", err)
		}
		// Without a file the private key goes to stdout, once.
		if out := c.must("keypair", "create", "printed"); !strings.Contains(out, "BEGIN OPENSSH PRIVATE KEY") {
			t.Fatalf("create to stdout: %s", out)
		}

		bad := writeFile(t, "bad.pub", "ssh-rsa not-base64 me@host\n")
		if msg := c.fails("keypair", "import", "bad", "--public-key", bad); !strings.Contains(msg, "spec.publicKey: not an SSH public key") {
			t.Fatalf("bad key: %s", msg)
		}
		if msg := c.fails("keypair", "import", "priv", "--public-key", keyFile); !strings.Contains(msg, "holds a private key") {
			t.Fatalf("private key as public: %s", msg)
		}
		pub := writeFile(t, "ok.pub", string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
		if out := c.must("keypair", "import", "laptop", "--public-key", pub); !strings.Contains(out, "keypair/laptop imported ("+fp+")") {
			t.Fatalf("import: %s", out)
		}
		out = c.must("keypair", "list")
		if !strings.Contains(out, "FINGERPRINT") || !strings.Contains(out, "laptop") || !strings.Contains(out, fp) {
			t.Fatalf("keypair list:\n%s", out)
		}
		if out := c.must("keypair", "show", "laptop"); !strings.Contains(out, "Fingerprint:") || !strings.Contains(out, "ssh-ed25519 AAAA") {
			t.Fatalf("keypair show:\n%s", out)
		}
		c.must("keypair", "delete", "printed")
	})

	t.Run("images", func(t *testing.T) {
		c := c.in(t)
		qcow := filepath.Join(t.TempDir(), "cirros.qcow2")
		if _, err := exec.LookPath("qemu-img"); err != nil {
			t.Skip("qemu-img is not installed (apt-get install qemu-utils)")
		}
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", qcow, "32M").CombinedOutput(); err != nil {
			t.Fatalf("qemu-img: %v\n%s", err, out)
		}
		out := c.must("image", "import", qcow, "--name", "cirros")
		if !strings.Contains(out, "imported image/cirros (disk, qcow2,") || !strings.Contains(out, "/s)") {
			t.Fatalf("disk import: %s", out)
		}
		kernel := make([]byte, 8192)
		copy(kernel[0x202:], "HdrS")
		var initrd bytes.Buffer
		zw := gzip.NewWriter(&initrd)
		zw.Write([]byte("070701"))
		zw.Close()
		kf := writeFile(t, "vmlinuz", string(kernel))
		inf := writeFile(t, "initrd.img", initrd.String())
		out = c.must("image", "import", "--kernel", kf, "--initrd", inf, "--cmdline", "console=ttyS0", "--name", "tiny")
		if !strings.Contains(out, "imported image/tiny (kernel, kernel+initrd,") {
			t.Fatalf("kernel import: %s", out)
		}
		text := writeFile(t, "notes.img", strings.Repeat("not a disk\n", 100))
		if msg := c.fails("image", "import", text, "--name", "notes"); !strings.Contains(msg, "files[disk]") {
			t.Fatalf("a text file as a disk: %s", msg)
		}
		if _, err := cl.Get(ctx, vmImageKind, "", "notes"); !client.IsNotFound(err) {
			t.Fatalf("a refused import left an image: %v", err)
		}
		if msg := c.fails("image", "import", qcow); !strings.Contains(msg, "looks like a VM disk image (qcow2)") || !strings.Contains(msg, "--name") {
			t.Fatalf("a disk without --name: %s", msg)
		}
		if msg := c.fails("image", "import", qcow, "--name", "cirros"); !strings.Contains(msg, "already exists") {
			t.Fatalf("a duplicate: %s", msg)
		}

		// Container images still import without --name, and ls shows both kinds.
		tarPath := filepath.Join(t.TempDir(), "busybox.tar")
		if err := testimage.WriteBusyboxTarball(tarPath, "docker.io/library/busybox:1.36"); errors.Is(err, testimage.ErrNoBusybox) {
			t.Logf("no container image to import: %v", err)
		} else if err != nil {
			t.Fatal(err)
		} else {
			if msg := c.fails("image", "import", tarPath, "--name", "bb"); !strings.Contains(msg, "is a tar archive, a container image") {
				t.Fatalf("a tarball with --name: %s", msg)
			}
			if out := c.must("image", "import", tarPath); !strings.Contains(out, "imported docker.io/library/busybox:1.36") {
				t.Fatalf("container import: %s", out)
			}
		}
		out = c.must("image", "ls")
		for _, want := range []string{"TYPE", "cirros", "vm-disk (qcow2)", "tiny", "vm-kernel (kernel+initrd)"} {
			if !strings.Contains(out, want) {
				t.Fatalf("image ls lacks %q:\n%s", want, out)
			}
		}
		if _, err := os.Stat(tarPath); err == nil && !strings.Contains(out, "container") {
			t.Fatalf("image ls lacks the container image:\n%s", out)
		}
		var recs []imageRecord
		if err := json.Unmarshal([]byte(c.must("image", "ls", "-o", "json")), &recs); err != nil || len(recs) < 2 {
			t.Fatalf("image ls -o json: %v %+v", err, recs)
		}
		if out := c.must("get", "images", "-o", "wide"); !strings.Contains(out, "console=ttyS0") || !strings.Contains(out, "Active") {
			t.Fatalf("get images -o wide:\n%s", out)
		}
		if out := c.must("describe", "image", "cirros"); !strings.Contains(out, "disk: qcow2,") {
			t.Fatalf("describe image:\n%s", out)
		}
	})

	t.Run("vms", func(t *testing.T) {
		c := c.in(t)
		if _, err := cl.Get(ctx, vmImageKind, "", "cirros"); err != nil {
			t.Skip("no image (the images test was skipped)")
		}
		ud := writeFile(t, "user-data", "#cloud-config\nhostname: web-1\n")
		if msg := c.fails("vm", "create", "web-1", "--image", "nope", "--flavor", "m1.tiny"); !strings.Contains(msg, `--image "nope": no such image`) {
			t.Fatalf("a missing image: %s", msg)
		}
		out := c.must("vm", "create", "web-1", "--image", "cirros", "--flavor", "m1.tiny", "--key-pair", "me", "--user-data", ud, "--network", "user")
		if out != "instance/web-1 created\n" {
			t.Fatalf("create: %q", out)
		}
		in := instance(t, "web-1")
		if in.Spec.KeyPair != "me" || !strings.Contains(in.Spec.UserData, "hostname: web-1") || in.Spec.Networks[0] != "user" || in.Spec.PowerState != api.PowerRunning {
			t.Fatalf("spec: %+v", in.Spec)
		}
		// This cluster's node runs no VMs (--vm-accel off): the instance controller
		// says so once the scheduler has found no node for the launcher pod.
		eventually(t, "web-1 in ERROR (NoValidHost)", func() error {
			if st := instance(t, "web-1").Status; st.State != api.InstanceError || st.Reason != "NoValidHost" {
				return fmt.Errorf("status %+v", st)
			}
			return nil
		})
		out = c.must("vm", "list")
		if !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "ADDRESS") || !strings.Contains(out, "web-1") || !strings.Contains(out, "ERROR") {
			t.Fatalf("vm list:\n%s", out)
		}
		if out := c.must("vm", "list", "-o", "wide"); !strings.Contains(out, "ACCEL") || !strings.Contains(out, "Running") {
			t.Fatalf("vm list -o wide:\n%s", out)
		}
		if out := c.must("get", "vm", "-o", "name"); out != "instance/web-1\n" {
			t.Fatalf("get vm -o name: %q", out)
		}
		out = c.must("vm", "show", "web-1")
		for _, want := range []string{"Status:", "ERROR", "NoValidHost", "Flavor:", "m1.tiny", "Key Pair:", "me", "Volumes:", "Events:"} {
			if !strings.Contains(out, want) {
				t.Fatalf("vm show lacks %q:\n%s", want, out)
			}
		}
		if out := c.must("vm", "show", "web-1", "-o", "yaml"); !strings.Contains(out, "kind: Instance") {
			t.Fatalf("vm show -o yaml:\n%s", out)
		}

		for _, step := range []struct{ cmd, want string }{
			{"stop", api.PowerStopped}, {"start", api.PowerRunning}, {"pause", api.PowerPaused}, {"resume", api.PowerRunning},
		} {
			c.must("vm", step.cmd, "web-1")
			if got := instance(t, "web-1").Spec.PowerState; got != step.want {
				t.Fatalf("after vm %s: power state %s", step.cmd, got)
			}
		}
		c.must("vm", "reboot", "web-1")
		soft := instance(t, "web-1").Spec.Reboot
		if soft == nil || soft.Type != api.RebootSoft || soft.ID == "" {
			t.Fatalf("soft reboot: %+v", soft)
		}
		c.must("vm", "reboot", "--hard", "web-1")
		if hard := instance(t, "web-1").Spec.Reboot; hard == nil || hard.Type != api.RebootHard || hard.ID == soft.ID {
			t.Fatalf("hard reboot: %+v", hard)
		}
		if msg := c.fails("vm", "console", "web-1"); !strings.Contains(msg, "has no console yet") {
			t.Fatalf("console of a VM no node runs: %s", msg)
		}

		// Volumes: attach and detach edit the instance; delete refuses one in use.
		c.must("volume", "create", "data", "--size", "2")
		if msg := c.fails("volume", "create", "big", "--size", "20000"); !strings.Contains(msg, "spec.sizeGB: 20000 must be between 1 and 16384") {
			t.Fatalf("a volume too big: %s", msg)
		}
		if out := c.must("volume", "attach", "data", "web-1"); !strings.Contains(out, "attaching") {
			t.Fatalf("attach: %s", out)
		}
		if v := instance(t, "web-1").Spec.Volumes; len(v) != 1 || v[0] != "data" {
			t.Fatalf("volumes after attach: %v", v)
		}
		if msg := c.fails("volume", "attach", "data", "web-1"); !strings.Contains(msg, "already attached") {
			t.Fatalf("attach twice: %s", msg)
		}
		if msg := c.fails("volume", "delete", "data"); !strings.Contains(msg, "attached to instance web-1") {
			t.Fatalf("delete of a listed volume: %s", msg)
		}
		if out := c.must("volume", "detach", "data", "web-1"); !strings.Contains(out, "detaching") {
			t.Fatalf("detach: %s", out)
		}
		if v := instance(t, "web-1").Spec.Volumes; len(v) != 0 {
			t.Fatalf("volumes after detach: %v", v)
		}
		// What a node reports once it has plugged the volume into another VM: the
		// instance controller turns it into the volume's status.
		c.must("vm", "create", "web-2", "--image", "cirros", "--flavor", "m1.tiny")
		if _, err := cl.ModifyStatus(ctx, instanceKind, "default", "web-2", func(o api.Object) error {
			o.(*api.Instance).Status.Volumes = []api.InstanceVolumeStatus{{Name: "data", Device: "vol-data"}}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the volume in use by web-2", func() error {
			if v, err := cl.Get(ctx, volumeKind, "default", "data"); err != nil || v.(*api.VMVolume).Status.Phase != api.VolumeInUse {
				return fmt.Errorf("volume: %v %v", v, err)
			}
			return nil
		})
		if out := c.must("volume", "list"); !strings.Contains(out, "in-use") || !strings.Contains(out, "web-2") {
			t.Fatalf("volume list:\n%s", out)
		}
		if msg := c.fails("volume", "delete", "data"); !strings.Contains(msg, "in use by instance web-2") {
			t.Fatalf("delete of a volume in use: %s", msg)
		}
		if msg := c.fails("volume", "attach", "data", "web-1"); !strings.Contains(msg, "in use by instance web-2") {
			t.Fatalf("attach of a volume in use: %s", msg)
		}
		if out := c.must("describe", "volume", "data"); !strings.Contains(out, "web-2 (device vol-data)") {
			t.Fatalf("describe volume:\n%s", out)
		}

		// --wait follows the state and ends with the reason of an ERROR: this
		// cluster's node runs no VMs (--vm-accel off), so nothing can hold one.
		out, _, err := c.run("", "vm", "create", "w", "--image", "cirros", "--flavor", "m1.tiny", "--wait", "--timeout", "60s")
		if err == nil || !strings.Contains(err.Error(), "NoValidHost: no valid host was found") || !strings.Contains(out, "w: ERROR (NoValidHost)") {
			t.Fatalf("create --wait into ERROR: %v\n%s", err, out)
		}
		c.must("vm", "delete", "w")
		c.must("vm", "delete", "web-2")

		if out := c.must("vm", "delete", "web-1", "--wait"); out != "instance/web-1 deleted\n" {
			t.Fatalf("delete: %q", out)
		}
		if _, err := cl.Get(ctx, instanceKind, "default", "web-1"); !client.IsNotFound(err) {
			t.Fatalf("deleted instance: %v", err)
		}
		// An image is removed by its name.
		if out := c.must("image", "rm", "tiny"); !strings.Contains(out, "removed VM image tiny") {
			t.Fatalf("image rm: %s", out)
		}
	})
}

// TestDetachReader checks that Ctrl-] ends the console's input before the key.
func TestDetachReader(t *testing.T) {
	detached := false
	r := &detachReader{r: strings.NewReader("ls\n\x1dnever sent"), detach: func() { detached = true }}
	var got bytes.Buffer
	if _, err := got.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if got.String() != "ls\n" || !detached {
		t.Fatalf("read %q, detached %v", got.String(), detached)
	}
}

// TestUploadBar draws the progress line as a terminal would show it.
func TestUploadBar(t *testing.T) {
	var out bytes.Buffer
	b := &uploadBar{w: &out, title: "importing x", tty: true}
	b.update("disk", 50<<20, 100<<20)
	b.finish()
	if s := out.String(); !strings.Contains(s, "importing x disk") || !strings.Contains(s, " 50% 50.0 MiB/100.0 MiB") || !strings.HasSuffix(s, "\n") {
		t.Fatalf("bar: %q", s)
	}
	out.Reset()
	quiet := &uploadBar{w: &out, title: "x"}
	quiet.update("disk", 1, 2)
	quiet.finish()
	if out.Len() != 0 {
		t.Fatalf("a bar off a terminal drew %q", out.String())
	}
}

// in returns the cluster for use in the subtest t, whose failures it reports.
func (c *cluster) in(t *testing.T) *cluster { return &cluster{t: t, config: c.config, dir: c.dir} }

// fails runs a command that must fail and returns its error and standard error.
func (c *cluster) fails(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run("", args...)
	if err == nil {
		c.t.Fatalf("cloudbox %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	return err.Error() + errOut
}
