package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

var vmImageKind = api.KindOfType[*api.Image]()

// vmImageFlags are image import's flags for VM images.
func vmImageFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "import FILE as a VM disk image of this name (qcow2 or raw)"},
		&cli.StringFlag{Name: "kernel", Usage: "import a VM kernel image: this kernel (bzImage); needs --name"},
		&cli.StringFlag{Name: "initrd", Usage: "with --kernel: the initrd (initramfs)"},
		&cli.StringFlag{Name: "cmdline", Usage: "with --kernel: the kernel command line, e.g. \"console=ttyS0\""},
	}
}

// isVMImport decides what `image import` imports: --name or --kernel make it a VM
// image; otherwise the file must be a container image, and a file that is plainly a
// disk image gets told how to import it.
func isVMImport(c *cli.Context) (bool, error) {
	if c.IsSet("name") || c.IsSet("kernel") {
		if c.IsSet("kernel") && !c.IsSet("name") {
			return true, fmt.Errorf("--kernel needs --name: the name VMs will use in --image")
		}
		if c.Args().Len() == 1 && c.Args().First() != "-" {
			if kind := sniffFile(c.Args().First()); kind == "tar" {
				return true, fmt.Errorf("%s is a tar archive, a container image: import it without --name", c.Args().First())
			}
		}
		return true, nil
	}
	for _, f := range []string{"initrd", "cmdline"} {
		if c.IsSet(f) {
			return false, fmt.Errorf("--%s is for VM kernel images: use it with --kernel FILE --name NAME", f)
		}
	}
	if c.Args().Len() == 1 && c.Args().First() != "-" {
		if kind := sniffFile(c.Args().First()); kind == "qcow2" || kind == "disk" {
			return false, fmt.Errorf("%s looks like a VM disk image (%s), not a container image: import it with --name NAME", c.Args().First(), kind)
		}
	}
	return false, nil
}

// sniffFile reads the start of a file: "tar" (a container image tarball), "qcow2",
// "disk" (a raw disk with a boot sector), or "" when it cannot tell. The server does
// the real check; this only routes the command and makes its error clear.
func sniffFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		return "qcow2"
	case n >= 262 && string(head[257:262]) == "ustar":
		return "tar"
	case n == 512 && head[510] == 0x55 && head[511] == 0xaa:
		return "disk"
	}
	return ""
}

func vmImageImport(c *cli.Context) error {
	img := client.NewObject[*api.Image]()
	img.Name = c.String("name")
	var files []client.ImageFileUpload
	add := func(role, path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		files = append(files, client.ImageFileUpload{Role: role, Content: f, Size: st.Size()})
		return nil
	}
	defer func() {
		for _, f := range files {
			f.Content.(io.Closer).Close()
		}
	}()
	if k := c.String("kernel"); k != "" {
		if c.Args().Len() > 0 {
			return fmt.Errorf("a kernel image takes its files from --kernel and --initrd, not %q", c.Args().First())
		}
		img.Spec = api.ImageSpec{Type: api.ImageTypeKernel, Cmdline: c.String("cmdline")}
		if err := add(api.ImageFileKernel, k); err != nil {
			return fmt.Errorf("--kernel: %w", err)
		}
		if i := c.String("initrd"); i != "" {
			if err := add(api.ImageFileInitrd, i); err != nil {
				return fmt.Errorf("--initrd: %w", err)
			}
		}
	} else {
		if c.Args().Len() != 1 || c.Args().First() == "-" {
			return fmt.Errorf("usage: cloudbox image import FILE --name NAME (a qcow2 or raw disk file)")
		}
		if c.IsSet("initrd") || c.IsSet("cmdline") {
			return fmt.Errorf("--initrd and --cmdline are for kernel images (--kernel FILE)")
		}
		img.Spec = api.ImageSpec{Type: api.ImageTypeDisk}
		if err := add(api.ImageFileDisk, c.Args().First()); err != nil {
			return err
		}
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	bar := newUploadBar(c.App.ErrWriter, "importing "+img.Name)
	start := time.Now()
	created, err := cl.ImportImage(c.Context, img, files, bar.update)
	bar.finish()
	if err != nil {
		return fmt.Errorf("import image %s: %w", img.Name, err)
	}
	elapsed := time.Since(start)
	fmt.Fprintf(c.App.Writer, "imported image/%s (%s, %s, %s in %s, %s/s)\n", created.Name, created.Spec.Type, imageFormat(created),
		humanBytes(created.Status.Size), elapsed.Round(time.Millisecond), humanBytes(rate(created.Status.Size, elapsed)))
	return nil
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// uploadBar draws "importing NAME [====    ]  42% 1.1 GiB/2.6 GiB 85.0 MiB/s" on a
// terminal, at most ten times a second; elsewhere it draws nothing and the command's
// final line says it all.
type uploadBar struct {
	w     io.Writer
	title string
	tty   bool
	start time.Time
	last  time.Time
	drawn bool
}

func newUploadBar(w io.Writer, title string) *uploadBar {
	f, ok := w.(*os.File)
	return &uploadBar{w: w, title: title, tty: ok && term.IsTerminal(int(f.Fd())), start: time.Now()}
}

func (b *uploadBar) update(role string, sent, total int64) {
	if !b.tty || (time.Since(b.last) < 100*time.Millisecond && sent < total) {
		return
	}
	b.last = time.Now()
	const width = 30
	pct := 0.0
	if total > 0 {
		pct = float64(sent) / float64(total)
	}
	filled := int(pct * width)
	fmt.Fprintf(b.w, "\r%s %-6s [%s%s] %3.0f%% %s/%s %s/s ", b.title, role, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		pct*100, humanBytes(sent), humanBytes(total), humanBytes(rate(sent, time.Since(b.start))))
	b.drawn = true
}

func (b *uploadBar) finish() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

// vmImageRecords lists the VM images in image ls's shape.
func vmImageRecords(c *cli.Context, cl *client.Client) ([]imageRecord, error) {
	images, err := client.ListTyped[*api.Image](c.Context, cl, "", client.ListOptions{})
	if err != nil {
		return nil, err
	}
	recs := make([]imageRecord, 0, len(images))
	for _, img := range images {
		r := imageRecord{Ref: img.Name, Type: "vm-" + img.Spec.Type, Size: img.Status.Size, Format: imageFormat(img)}
		if len(img.Status.Files) > 0 {
			r.ID = "sha256:" + img.Status.Files[0].SHA256
		}
		if img.CreationTimestamp != nil {
			r.Stored = img.CreationTimestamp.Time
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// removeVMImage deletes the VM image ref names, if there is one: VM image names never
// hold ':', '/' or '@', so a container reference never reaches the API for this.
func removeVMImage(c *cli.Context, cl *client.Client, ref string) (bool, error) {
	if strings.ContainsAny(ref, ":/@") {
		return false, nil
	}
	if _, err := client.Delete[*api.Image](c.Context, cl, "", ref); client.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return true, err
	}
	fmt.Fprintf(c.App.Writer, "removed VM image %s (for a container image of that name say %s:TAG)\n", ref, ref)
	return true, nil
}
