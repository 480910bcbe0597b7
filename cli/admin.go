package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/store"
)

func adminCommand() *cli.Command {
	return &cli.Command{
		Name:  "admin",
		Usage: "back up and restore the cluster's state",
		Subcommands: []*cli.Command{
			{
				Name:  "rotate-encryption-key",
				Usage: "seal secrets with a new key and re-seal every stored secret",
				Description: `Secrets are encrypted at rest (AES-256-GCM) with keys kept in
DATA_DIR/encryption-keys.json. Rotating adds a key, makes it the one that seals, and
rewrites every secret with it. Older keys stay in the file so that backups taken
before the rotation can still be read.`,
				Action: func(c *cli.Context) error {
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					rc, err := cl.Stream(c.Context, "POST", "/admin/rotate-encryption-key", nil, nil)
					if err != nil {
						return err
					}
					defer rc.Close()
					var res struct {
						Primary  string `json:"primaryKey"`
						Resealed int    `json:"resealedSecrets"`
					}
					if err := json.NewDecoder(rc).Decode(&res); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "secrets are now sealed with key %s (%d re-sealed)\n", res.Primary, res.Resealed)
					return nil
				},
			},
			{
				Name:      "backup",
				Usage:     "write a consistent copy of the store to FILE",
				ArgsUsage: "FILE",
				Description: `With a running server, the copy is taken through the API (admin token
needed) while the server keeps serving. With --data-dir, the store file of a
stopped server is copied directly.

   cloudbox admin backup /root/cloudbox-$(date +%F).db
   cloudbox admin backup --data-dir /var/lib/cloudbox backup.db`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "data-dir", Usage: "read the store of a stopped server from this data dir instead of the API"},
				},
				Action: runBackup,
			},
			{
				Name:      "restore",
				Usage:     "replace a stopped server's store with a backup",
				ArgsUsage: "FILE",
				Description: `Stop the server first: restore refuses a data dir in use. The backup is
checked (a cloudbox store of a schema this binary knows) before the current store
is replaced, atomically.

   cloudbox admin restore --data-dir /var/lib/cloudbox backup.db`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "data-dir", Value: "/var/lib/cloudbox", Usage: "the data dir of the stopped server"},
				},
				Action: func(c *cli.Context) error {
					if c.Args().Len() != 1 {
						return fmt.Errorf("usage: cloudbox admin restore --data-dir DIR FILE")
					}
					dir := c.String("data-dir")
					if err := os.MkdirAll(dir, 0o700); err != nil {
						return err
					}
					if err := store.Restore(filepath.Join(dir, "state.db"), c.Args().First()); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "restored %s into %s\n", c.Args().First(), dir)
					return nil
				},
			},
		},
	}
}

func runBackup(c *cli.Context) error {
	if c.Args().Len() != 1 {
		return fmt.Errorf("usage: cloudbox admin backup [--data-dir DIR] FILE")
	}
	dst := c.Args().First()
	var src io.ReadCloser
	if dir := c.String("data-dir"); dir != "" {
		st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
		if err != nil {
			return err
		}
		pr, pw := io.Pipe()
		go func() {
			_, err := st.Backup(pw)
			st.Close()
			pw.CloseWithError(err)
		}()
		src = pr
	} else {
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		if src, err = cl.Raw(c.Context, "GET", "/admin/backup"); err != nil {
			return err
		}
	}
	defer src.Close()
	tmp := dst + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, src)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "wrote %s (%d bytes)\n", dst, n)
	return nil
}
