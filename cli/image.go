package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func imageCommand() *cli.Command {
	nodeFlag := &cli.StringFlag{Name: "node", Usage: "the node whose images to act on (default: the only node)"}
	return &cli.Command{
		Name:  "image",
		Usage: "manage container images (of a node) and VM images (of the cluster)",
		Description: `Each node keeps its own container images (pods pull what they need on their
own). VM images are the cluster's: the API server keeps them, nodes fetch them
when a VM boots from one.

   cloudbox image pull busybox:1.36
   cloudbox image import busybox.tar          # a 'docker save' or OCI-layout tarball
   cloudbox image import debian-12.qcow2 --name debian-12           # a VM disk image
   cloudbox image import --kernel vmlinuz --initrd initrd.img \
       --cmdline "console=ttyS0" --name tiny-kernel                 # a VM kernel image
   cloudbox image ls                          # both kinds, with a TYPE column
   cloudbox image rm busybox:1.36
   cloudbox image rm debian-12                # a VM image is removed by its name
   cloudbox image prune                       # remove layers no image uses`,
		Subcommands: []*cli.Command{
			{Name: "pull", Usage: "pull an image from its registry", ArgsUsage: "REF", Flags: []cli.Flag{nodeFlag}, Action: imagePull},
			{Name: "import", Usage: "import a container image tarball, or a VM disk or kernel image",
				ArgsUsage: "FILE|- | FILE --name NAME | --kernel FILE [--initrd FILE] [--cmdline STR] --name NAME",
				Description: `Without --name, FILE is a container image: a 'docker save' or OCI-layout
tarball, imported into the node's store. With --name, FILE is a VM disk image
(qcow2 or raw; the format is read from the content, never from the name); with
--kernel, the VM image is a kernel, an optional initrd and a command line. The
file is sniffed too: a tar archive is a container image, a disk is not.

A VM image is streamed to the API server, which checks it and keeps it; a
progress bar is drawn on standard error when it is a terminal.

   cloudbox image import busybox.tar
   cloudbox image import debian-12.qcow2 --name debian-12
   cloudbox image import --kernel vmlinuz --initrd initrd.img --cmdline "console=ttyS0 quiet" --name tiny`,
				Flags: append([]cli.Flag{nodeFlag}, vmImageFlags()...), Action: imageImport},
			{Name: "ls", Aliases: []string{"list"}, Usage: "list images", Flags: []cli.Flag{nodeFlag,
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json or yaml"}}, Action: imageList},
			{Name: "rm", Aliases: []string{"remove"}, Usage: "remove an image", ArgsUsage: "REF|VM-IMAGE-NAME",
				Description: `A bare name that is a VM image's (no ':', '/' or '@') removes that VM image and its
files; anything else is a container image reference on the node.`,
				Flags: []cli.Flag{nodeFlag}, Action: imageRemove},
			{Name: "prune", Usage: "remove layers no image uses", Flags: []cli.Flag{nodeFlag}, Action: imagePrune},
		},
	}
}

// imageNode is the node --node names, or the only node there is.
func imageNode(c *cli.Context, cl *client.Client) (string, error) {
	if n := c.String("node"); n != "" {
		return n, nil
	}
	nodes, err := client.ListTyped[*api.Node](c.Context, cl, "", client.ListOptions{})
	if err != nil {
		return "", err
	}
	switch len(nodes) {
	case 0:
		return "", fmt.Errorf("no nodes have joined yet")
	case 1:
		return nodes[0].Name, nil
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	return "", fmt.Errorf("several nodes: choose one with --node (%s)", strings.Join(names, ", "))
}

func imagesPath(node string) string { return "/api/v1/nodes/" + url.PathEscape(node) + "/images" }

// imageRequest sends an image request to the node and returns the answer stream.
func imageRequest(c *cli.Context, method string, q url.Values, body io.Reader) (io.ReadCloser, error) {
	cl, err := newClient(c)
	if err != nil {
		return nil, err
	}
	node, err := imageNode(c, cl)
	if err != nil {
		return nil, err
	}
	return cl.Stream(c.Context, method, imagesPath(node), q, body)
}

type imageRecord struct {
	Ref string `json:"ref"`
	// Type is container, vm-disk or vm-kernel; Format a VM image's (qcow2, raw, kernel+initrd).
	Type   string    `json:"type,omitempty"`
	Format string    `json:"format,omitempty"`
	ID     string    `json:"id"`
	Size   int64     `json:"size"`
	Stored time.Time `json:"stored"`
}

func imagePull(c *cli.Context) error {
	if c.Args().Len() != 1 {
		return fmt.Errorf("usage: cloudbox image pull REF")
	}
	ref := c.Args().First()
	rc, err := imageRequest(c, http.MethodPost, url.Values{"action": {"pull"}, "ref": {ref}}, nil)
	if err != nil {
		return err
	}
	defer rc.Close()
	bar := newProgressBar(c.App.Writer, ref)
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev struct {
			Progress *struct {
				Layer       string `json:"Layer"`
				Status      string `json:"Status"`
				Done, Total int64
			} `json:"progress"`
			Image *imageRecord `json:"image"`
			Error string       `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("bad answer from the node: %w", err)
		}
		switch {
		case ev.Error != "":
			bar.finish()
			return fmt.Errorf("pull %s: %s", ref, ev.Error)
		case ev.Progress != nil:
			bar.update(ev.Progress.Layer, ev.Progress.Done, ev.Progress.Total)
		case ev.Image != nil:
			bar.finish()
			fmt.Fprintf(c.App.Writer, "pulled %s (%s, %s)\n", ev.Image.Ref, shortID(ev.Image.ID), humanBytes(ev.Image.Size))
			return nil
		}
	}
	bar.finish()
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("pull %s: the node's answer ended early", ref)
}

func imageImport(c *cli.Context) error {
	if vm, err := isVMImport(c); err != nil {
		return err
	} else if vm {
		return vmImageImport(c)
	}
	if c.Args().Len() != 1 {
		return fmt.Errorf("usage: cloudbox image import FILE|-")
	}
	var in io.Reader = c.App.Reader
	name := "standard input"
	if p := c.Args().First(); p != "-" {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, p
		if st, err := f.Stat(); err == nil {
			in = &countingReader{r: f, bar: newProgressBar(c.App.Writer, "importing "+p), total: st.Size()}
		}
	}
	rc, err := imageRequest(c, http.MethodPost, url.Values{"action": {"import"}}, in)
	if cr, ok := in.(*countingReader); ok {
		cr.bar.finish()
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	var imgs []imageRecord
	if err := json.NewDecoder(rc).Decode(&imgs); err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	for _, img := range imgs {
		fmt.Fprintf(c.App.Writer, "imported %s (%s, %s)\n", img.Ref, shortID(img.ID), humanBytes(img.Size))
	}
	return nil
}

func imageList(c *cli.Context) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	imgs, err := vmImageRecords(c, cl)
	if err != nil {
		return err
	}
	// Container images are the node's; with no node yet the VM images still show.
	if node, err := imageNode(c, cl); err != nil {
		if c.IsSet("node") || len(imgs) == 0 {
			return err
		}
		fmt.Fprintf(c.App.ErrWriter, "container images not listed: %v\n", err)
	} else {
		rc, err := cl.Stream(c.Context, http.MethodGet, imagesPath(node), nil, nil)
		if err != nil {
			return err
		}
		defer rc.Close()
		var ctrs []imageRecord
		if err := json.NewDecoder(rc).Decode(&ctrs); err != nil {
			return err
		}
		for i := range ctrs {
			ctrs[i].Type = "container"
		}
		imgs = append(ctrs, imgs...)
	}
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Ref < imgs[j].Ref })
	if o := c.String("output"); o == "json" || o == "yaml" {
		return encode(c.App.Writer, imgs, o)
	} else if o != "" {
		return fmt.Errorf("--output %q: use json or yaml", o)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tTYPE\tID\tSIZE\tSTORED")
	for _, img := range imgs {
		typ := img.Type
		if img.Format != "" {
			typ += " (" + img.Format + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.Ref, typ, shortID(img.ID), humanBytes(img.Size), shortDuration(time.Since(img.Stored))+" ago")
	}
	return tw.Flush()
}

func imageRemove(c *cli.Context) error {
	if c.Args().Len() != 1 {
		return fmt.Errorf("usage: cloudbox image rm REF")
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	if done, err := removeVMImage(c, cl, c.Args().First()); done || err != nil {
		return err
	}
	rc, err := imageRequest(c, http.MethodDelete, url.Values{"ref": {c.Args().First()}}, nil)
	if err != nil {
		return err
	}
	rc.Close()
	fmt.Fprintf(c.App.Writer, "removed %s (run 'cloudbox image prune' to free its layers)\n", c.Args().First())
	return nil
}

func imagePrune(c *cli.Context) error {
	rc, err := imageRequest(c, http.MethodPost, url.Values{"action": {"prune"}}, nil)
	if err != nil {
		return err
	}
	defer rc.Close()
	var res struct {
		Freed int64 `json:"freedBytes"`
	}
	if err := json.NewDecoder(rc).Decode(&res); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "freed %s\n", humanBytes(res.Freed))
	return nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progressBar draws one line of progress when the output is a terminal, and
// nothing otherwise (logs and pipes get the final line only).
type progressBar struct {
	w      io.Writer
	title  string
	tty    bool
	layers map[string][2]int64
	last   time.Time
	drawn  bool
}

func newProgressBar(w io.Writer, title string) *progressBar {
	f, ok := w.(*os.File)
	return &progressBar{w: w, title: title, tty: ok && term.IsTerminal(int(f.Fd())), layers: map[string][2]int64{}}
}

func (p *progressBar) update(layer string, done, total int64) {
	if !p.tty {
		return
	}
	p.layers[layer] = [2]int64{done, total}
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	var d, t int64
	for _, v := range p.layers {
		d, t = d+v[0], t+v[1]
	}
	pct := 0.0
	if t > 0 {
		pct = float64(d) / float64(t)
	}
	const width = 30
	filled := int(pct * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %s/%s (%d layers)", p.title, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		pct*100, humanBytes(d), humanBytes(t), len(p.layers))
	p.drawn = true
}

func (p *progressBar) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// countingReader reports upload progress to a bar.
type countingReader struct {
	r     io.Reader
	bar   *progressBar
	done  int64
	total int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.done += int64(n)
	c.bar.update("upload", c.done, c.total)
	return n, err
}
