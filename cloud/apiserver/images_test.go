package apiserver

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/store"
)

// newImageServer is newTestServer with a data dir for image files.
func newImageServer(t *testing.T) (*httptest.Server, *Server, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Store: st, Tokens: &Tokens{Admin: testToken, NodeSecret: "node-secret"}, MaxBodyBytes: 64 << 10, DataDir: dir})
	if err := s.EnsureCompute(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	ts := httptest.NewTLSServer(s)
	t.Cleanup(func() {
		s.Shutdown()
		ts.Close()
		st.Close()
	})
	return ts, s, dir
}

// multipartBody builds an import body: the image object, then files in order.
func multipartBody(t *testing.T, image string, files ...[2]string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if image != "" {
		if err := mw.WriteField("image", image); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		w, err := mw.CreateFormFile(f[0], f[0])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f[1]))
	}
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func testQcow2(t *testing.T) []byte {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed (apt-get install qemu-utils)")
	}
	p := filepath.Join(t.TempDir(), "d.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", p, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testRawDisk is 1 MiB with an MBR boot signature.
func testRawDisk() []byte {
	b := make([]byte, 1<<20)
	b[510], b[511] = 0x55, 0xaa
	return b
}

// testKernel has the bzImage header magic "HdrS" at 0x202.
func testKernel() []byte {
	b := make([]byte, 8192)
	copy(b[0x202:], "HdrS")
	b[0x1fe], b[0x1ff] = 0x55, 0xaa
	return b
}

func testInitrd(t *testing.T) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("070701 a cpio archive, more or less"))
	zw.Close()
	return b.Bytes()
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// imageDirs lists what is in DATA_DIR/vm-images.
func imageDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(dir, vmImagesDir))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestImageImportDownloadDelete(t *testing.T) {
	ts, _, dir := newImageServer(t)
	qcow := testQcow2(t)
	raw := testRawDisk()
	kernel, initrd := testKernel(), testInitrd(t)

	imports := []struct {
		name, image string
		files       [][2]string
		formats     map[string]string
	}{
		{"cirros", `{"metadata":{"name":"cirros","labels":{"os":"cirros"}},"spec":{"type":"disk"}}`,
			[][2]string{{"disk", string(qcow)}}, map[string]string{"disk": "qcow2"}},
		{"raw-disk", "apiVersion: compute/v1\nkind: Image\nmetadata: {name: raw-disk}\nspec: {type: disk}\n",
			[][2]string{{"disk", string(raw)}}, map[string]string{"disk": "raw"}},
		{"tiny-kernel", `{"metadata":{"name":"tiny-kernel"},"spec":{"type":"kernel","cmdline":"console=ttyS0"}}`,
			[][2]string{{"kernel", string(kernel)}, {"initrd", string(initrd)}}, map[string]string{"kernel": "", "initrd": ""}},
	}
	for _, im := range imports {
		ct, body := multipartBody(t, im.image, im.files...)
		a := call(t, ts, testToken, "POST", ImageImportPath, ct, body)
		if a.code != http.StatusCreated {
			t.Fatalf("import %s: %d %s", im.name, a.code, a.body)
		}
		var img api.Image
		if err := json.Unmarshal(a.body, &img); err != nil {
			t.Fatal(err)
		}
		if img.Status.Phase != api.ImageActive || len(img.Status.Files) != len(im.files) || img.UID == "" {
			t.Fatalf("import %s: status %+v", im.name, img.Status)
		}
		var total int64
		for i, f := range img.Status.Files {
			want := im.files[i][1]
			if f.Role != im.files[i][0] || f.Size != int64(len(want)) || f.SHA256 != sum([]byte(want)) {
				t.Fatalf("import %s: file %d: %+v", im.name, i, f)
			}
			if wf := im.formats[f.Role]; wf != "" && f.Format != wf {
				t.Fatalf("import %s: %s format %q, want %q", im.name, f.Role, f.Format, wf)
			}
			total += f.Size
			// Download gives the same bytes, to the admin and to a node.
			for _, tok := range []string{testToken, "node-secret"} {
				d := call(t, ts, tok, "GET", "/apis/compute/v1/images/"+im.name+"/files/"+f.Role, "", nil)
				if d.code != http.StatusOK || sum(d.body) != f.SHA256 {
					t.Fatalf("download %s/%s: %d, %d bytes", im.name, f.Role, d.code, len(d.body))
				}
			}
		}
		if img.Status.Size != total {
			t.Fatalf("import %s: size %d, want %d", im.name, img.Status.Size, total)
		}
		if im.name == "cirros" && img.Labels["os"] != "cirros" {
			t.Fatalf("labels lost: %v", img.Labels)
		}
	}
	if d := call(t, ts, testToken, "GET", "/apis/compute/v1/images/cirros/files/kernel", "", nil); d.code != http.StatusNotFound {
		t.Fatalf("a file the image lacks: %d %s", d.code, d.body)
	}

	// Refused: a node may not import; a duplicate name is 409 and leaves no files.
	ct, body := multipartBody(t, `{"metadata":{"name":"cirros"},"spec":{"type":"disk"}}`, [2]string{"disk", string(raw)})
	if a := call(t, ts, "node-secret", "POST", ImageImportPath, ct, body); a.code != http.StatusForbidden {
		t.Fatalf("node import: %d %s", a.code, a.body)
	}
	if a := call(t, ts, testToken, "POST", ImageImportPath, ct, body); a.code != http.StatusConflict || a.status(t).Reason != "AlreadyExists" {
		t.Fatalf("duplicate: %d %s", a.code, a.body)
	}
	if got := imageDirs(t, dir); len(got) != 3 {
		t.Fatalf("image dirs after the refusals: %v", got)
	}

	// Deleting an image removes its files.
	var cirros api.Image
	json.Unmarshal(call(t, ts, testToken, "GET", "/apis/compute/v1/images/cirros", "", nil).body, &cirros)
	if a := call(t, ts, testToken, "DELETE", "/apis/compute/v1/images/cirros", "", nil); a.code != http.StatusOK {
		t.Fatalf("delete: %d %s", a.code, a.body)
	}
	if _, err := os.Stat(filepath.Join(dir, vmImagesDir, cirros.UID)); !os.IsNotExist(err) {
		t.Fatalf("files of a deleted image are still there: %v", err)
	}
}

func TestImageImportRefusals(t *testing.T) {
	ts, _, dir := newImageServer(t)
	kernel := testKernel()
	cases := []struct {
		name  string
		image string
		files [][2]string
		code  int
		want  string
	}{
		{"text as a disk", `{"metadata":{"name":"notes"},"spec":{"type":"disk"}}`,
			[][2]string{{"disk", strings.Repeat("just some text\n", 100)}}, 422, "files[disk]: not a disk image: no qcow2 header, boot sector or partition table"},
		{"vmdk as a disk", `{"metadata":{"name":"v"},"spec":{"type":"disk"}}`,
			[][2]string{{"disk", "KDMV" + strings.Repeat("\x00", 600)}}, 422, "files[disk]: not a disk image: a VMDK, VHDX or VDI disk: convert it first"},
		{"disk without a disk", `{"metadata":{"name":"d"},"spec":{"type":"disk"}}`, nil, 422, "files[disk]: required"},
		{"kernel as a disk", `{"metadata":{"name":"d"},"spec":{"type":"disk"}}`,
			[][2]string{{"kernel", string(kernel)}}, 422, "files[kernel]: not part of a disk image"},
		{"text as a kernel", `{"metadata":{"name":"k"},"spec":{"type":"kernel"}}`,
			[][2]string{{"kernel", "hello"}}, 422, "files[kernel]: not a bootable Linux kernel: no bzImage setup header"},
		{"text as an initrd", `{"metadata":{"name":"k"},"spec":{"type":"kernel"}}`,
			[][2]string{{"kernel", string(kernel)}, {"initrd", "hello"}}, 422, "files[initrd]: not an initramfs"},
		{"kernel without a kernel", `{"metadata":{"name":"k"},"spec":{"type":"kernel"}}`,
			[][2]string{{"initrd", string(testInitrd(t))}}, 422, "files[kernel]: required"},
		{"no image part", "", [][2]string{{"disk", string(testRawDisk())}}, 422, "image: required"},
		{"bad type", `{"metadata":{"name":"x"},"spec":{"type":"iso"}}`, nil, 422, "spec.type"},
		{"cmdline on a disk", `{"metadata":{"name":"x"},"spec":{"type":"disk","cmdline":"quiet"}}`, nil, 422, "spec.cmdline"},
		{"unknown part", `{"metadata":{"name":"x"},"spec":{"type":"disk"}}`, [][2]string{{"iso", "x"}}, 422, "unknown part \"iso\""},
		{"disk twice", `{"metadata":{"name":"x"},"spec":{"type":"disk"}}`,
			[][2]string{{"disk", string(testRawDisk())}, {"disk", string(testRawDisk())}}, 422, "files[disk]: sent twice"},
	}
	for _, tc := range cases {
		ct, body := multipartBody(t, tc.image, tc.files...)
		a := call(t, ts, testToken, "POST", ImageImportPath, ct, body)
		if a.code != tc.code || !strings.Contains(a.status(t).Message, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, a.code, a.body, tc.code, tc.want)
		}
	}
	if got := imageDirs(t, dir); len(got) != 0 {
		t.Fatalf("refused imports left files: %v", got)
	}
	var list struct{ Items []api.Image }
	json.Unmarshal(call(t, ts, testToken, "GET", "/apis/compute/v1/images", "", nil).body, &list)
	if len(list.Items) != 0 {
		t.Fatalf("refused imports left images: %+v", list.Items)
	}
	if a := call(t, ts, testToken, "POST", ImageImportPath, "application/json", []byte(`{}`)); a.code != http.StatusUnsupportedMediaType {
		t.Fatalf("JSON import: %d %s", a.code, a.body)
	}
	// A plain create gets a Pending status whatever it says.
	a := call(t, ts, testToken, "POST", "/apis/compute/v1/images", "application/json",
		[]byte(`{"metadata":{"name":"p"},"spec":{"type":"disk"},"status":{"phase":"Active"}}`))
	var img api.Image
	if json.Unmarshal(a.body, &img); a.code != http.StatusCreated || img.Status.Phase != api.ImagePending {
		t.Fatalf("plain create: %d %s", a.code, a.body)
	}
}

func TestImageImportTooLarge(t *testing.T) {
	ts, s, dir := newImageServer(t)
	s.cfg.MaxImageBytes = 64 << 10
	ct, body := multipartBody(t, `{"metadata":{"name":"big"},"spec":{"type":"disk"}}`, [2]string{"disk", string(testRawDisk())})
	if a := call(t, ts, testToken, "POST", ImageImportPath, ct, body); a.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("too large: %d %s", a.code, a.body)
	}
	if got := imageDirs(t, dir); len(got) != 0 {
		t.Fatalf("a cut-off import left files: %v", got)
	}
}

func TestEnsureComputeDefaultsAndSweep(t *testing.T) {
	ts, s, dir := newImageServer(t)
	var list struct{ Items []api.Flavor }
	json.Unmarshal(call(t, ts, testToken, "GET", "/apis/compute/v1/flavors", "", nil).body, &list)
	if len(list.Items) != len(api.DefaultFlavors) {
		t.Fatalf("flavors: %+v", list.Items)
	}
	for _, f := range list.Items {
		if f.Spec != api.DefaultFlavors[f.Name] {
			t.Fatalf("flavor %s: %+v", f.Name, f.Spec)
		}
	}
	// A deleted default stays deleted at the next start; stray files are swept.
	if a := call(t, ts, testToken, "DELETE", "/apis/compute/v1/flavors/m1.large", "", nil); a.code != http.StatusOK {
		t.Fatalf("delete flavor: %d %s", a.code, a.body)
	}
	for _, stray := range []string{".staging-123", "0d3c7a5e-dead-beef-0000-000000000000"} {
		os.MkdirAll(filepath.Join(dir, vmImagesDir, stray), 0o700)
	}
	if err := s.EnsureCompute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := call(t, ts, testToken, "GET", "/apis/compute/v1/flavors/m1.large", "", nil); a.code != http.StatusNotFound {
		t.Fatalf("a deleted default came back: %d", a.code)
	}
	if got := imageDirs(t, dir); len(got) != 0 {
		t.Fatalf("stray dirs not swept: %v", got)
	}
	// Without the marker (a fresh data dir), the missing ones are created, the rest kept.
	os.Remove(filepath.Join(dir, flavorsMarker))
	if err := s.EnsureCompute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := call(t, ts, testToken, "GET", "/apis/compute/v1/flavors/m1.large", "", nil); a.code != http.StatusOK {
		t.Fatalf("m1.large not created again: %d", a.code)
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestImageImportThroughClient streams a 64 MiB disk with the client, reads it back,
// and sees a duplicate refused before its upload is through.
func TestImageImportThroughClient(t *testing.T) {
	ts, _, _ := newImageServer(t)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	cl, err := client.New(client.Config{Server: ts.URL, Token: testToken, CACert: ca})
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	disk := func() io.Reader {
		return io.MultiReader(bytes.NewReader(testRawDisk()), io.LimitReader(zeros{}, size-1<<20))
	}
	img := &api.Image{Spec: api.ImageSpec{Type: api.ImageTypeDisk}}
	img.Name = "big"
	// The client's writer may still run for a moment after a refusal: atomics.
	var sent, total atomic.Int64
	progress := func(role string, s, tot int64) { sent.Store(s); total.Store(tot) }
	created, err := cl.ImportImage(context.Background(), img, []client.ImageFileUpload{{Role: "disk", Content: disk(), Size: size}}, progress)
	if err != nil {
		t.Fatal(err)
	}
	if sent.Load() != size || total.Load() != size || created.Status.Size != size || created.Status.Files[0].Format != "raw" {
		t.Fatalf("progress %d/%d, status %+v", sent.Load(), total.Load(), created.Status)
	}
	rc, err := cl.DownloadImageFile(context.Background(), "big", "disk")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != created.Status.Files[0].SHA256 {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	_, err = cl.ImportImage(context.Background(), img, []client.ImageFileUpload{{Role: "disk", Content: disk(), Size: size}}, progress)
	if !client.IsAlreadyExists(err) || sent.Load() >= size {
		t.Fatalf("duplicate: %v after %d of %d bytes", err, sent.Load(), size)
	}
}
