package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() { registerCommand(keypairCommand()) }

var keypairKind = api.KindOfType[*api.KeyPair]()

func keypairCommand() *cli.Command {
	nsFlag := &cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "the namespace"}
	return &cli.Command{
		Name:  "keypair",
		Usage: "manage the SSH keys VMs authorize (key pairs)",
		Description: `A key pair is an SSH public key; a VM created with --key-pair NAME gets it in
its cloud-init seed, so you can log in with the private key. cloudbox keeps only
the public key.

   cloudbox keypair create me --private-key ~/.ssh/cloudbox_me    # new ed25519 key
   cloudbox keypair import laptop --public-key ~/.ssh/id_ed25519.pub
   cloudbox keypair list
   cloudbox vm create web-1 --image debian-12 --flavor m1.small --key-pair me
   ssh -i ~/.ssh/cloudbox_me debian@ADDRESS`,
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "generate an ed25519 key pair and store its public key", ArgsUsage: "NAME",
				Description: `The private key is generated here, never sent, and written once in OpenSSH
format: to --private-key FILE (mode 0600; an existing file is not overwritten), or
to standard output when no file is given.

   cloudbox keypair create me --private-key ~/.ssh/cloudbox_me`,
				Flags:  []cli.Flag{nsFlag, &cli.StringFlag{Name: "private-key", Usage: "write the private key to this file (mode 0600) instead of standard output"}},
				Action: keypairCreate},
			{Name: "import", Usage: "store an existing SSH public key", ArgsUsage: "NAME --public-key FILE",
				Description: `   cloudbox keypair import laptop --public-key ~/.ssh/id_ed25519.pub`,
				Flags:       []cli.Flag{nsFlag, &cli.StringFlag{Name: "public-key", Usage: "an authorized_keys line, as in ~/.ssh/id_*.pub (- for standard input)", Required: true}},
				Action:      keypairImport},
			{Name: "list", Aliases: []string{"ls"}, Usage: "list key pairs", Flags: listFlags(true),
				Action: func(c *cli.Context) error { return listObjects(c, keypairKind) }},
			{Name: "show", Usage: "show a key pair with its fingerprint and public key", ArgsUsage: "NAME",
				Flags:  []cli.Flag{nsFlag, &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json or yaml instead of text"}},
				Action: func(c *cli.Context) error { return showNamed(c, keypairKind, c.String("namespace")) }},
			{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a key pair (VMs that have it keep it)", ArgsUsage: "NAME", Flags: []cli.Flag{nsFlag},
				Action: func(c *cli.Context) error { return deleteNamed(c, keypairKind, c.String("namespace")) }},
		},
	}
}

func keypairCreate(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		return err
	}
	privPEM := pem.EncodeToMemory(block)
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + name
	// The file is written before the key pair is stored, so that a key pair never
	// exists whose private key was lost; a failed create takes the file back.
	path := c.String("private-key")
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("--private-key %s: the file exists; choose another or remove it", path)
		}
		if err != nil {
			return fmt.Errorf("--private-key: %w", err)
		}
		_, err = f.Write(privPEM)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return fmt.Errorf("--private-key: %w", err)
		}
	}
	kp, err := createKeyPair(c, name, authorized)
	if err != nil {
		if path != "" {
			os.Remove(path)
		}
		return err
	}
	if path == "" {
		fmt.Fprint(c.App.Writer, string(privPEM))
		fmt.Fprintf(c.App.ErrWriter, "keypair/%s created (%s); the private key above is shown once: save it with mode 0600\n", name, kp.Status.Fingerprint)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "keypair/%s created (%s); private key in %s\n", name, kp.Status.Fingerprint, path)
	return nil
}

func keypairImport(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	b, err := readFileFlag(c, "public-key")
	if err != nil {
		return err
	}
	if strings.Contains(string(b), "PRIVATE KEY") {
		return fmt.Errorf("--public-key %s holds a private key: give the .pub file", c.String("public-key"))
	}
	kp, err := createKeyPair(c, name, strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "keypair/%s imported (%s)\n", name, kp.Status.Fingerprint)
	return nil
}

func createKeyPair(c *cli.Context, name, publicKey string) (*api.KeyPair, error) {
	kp := client.NewObject[*api.KeyPair]()
	kp.Name, kp.Namespace = name, c.String("namespace")
	kp.Spec.PublicKey = publicKey
	cl, err := newClient(c)
	if err != nil {
		return nil, err
	}
	return client.Create(c.Context, cl, kp)
}
