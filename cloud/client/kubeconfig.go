package client

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// The admin config file is a kubeconfig, so the same file serves cloudbox's CLI and,
// later, a real kubectl.
type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		CertificateAuthorityData string `json:"certificate-authority-data,omitempty"`
	} `json:"cluster"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		Token string `json:"token,omitempty"`
	} `json:"user"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster   string `json:"cluster"`
		User      string `json:"user"`
		Namespace string `json:"namespace,omitempty"`
	} `json:"context"`
}

// WriteConfigFile writes cfg as a kubeconfig at path with mode 0600, through a
// temporary file so readers never see half a file.
func WriteConfigFile(path string, cfg Config) error {
	kc := kubeconfig{APIVersion: "v1", Kind: "Config", CurrentContext: "cloudbox"}
	var cl namedCluster
	cl.Name = "cloudbox"
	cl.Cluster.Server = cfg.Server
	cl.Cluster.CertificateAuthorityData = base64.StdEncoding.EncodeToString(cfg.CACert)
	var u namedUser
	u.Name = "admin"
	u.User.Token = cfg.Token
	var cx namedContext
	cx.Name = "cloudbox"
	cx.Context.Cluster, cx.Context.User = "cloudbox", "admin"
	kc.Clusters, kc.Users, kc.Contexts = []namedCluster{cl}, []namedUser{u}, []namedContext{cx}
	data, err := yaml.Marshal(kc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadConfigFile reads a kubeconfig written by WriteConfigFile (or any kubeconfig
// that uses a bearer token) and returns the current context's settings.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cxName := kc.CurrentContext
	var cx *namedContext
	for i := range kc.Contexts {
		if kc.Contexts[i].Name == cxName || cxName == "" {
			cx = &kc.Contexts[i]
			break
		}
	}
	if cx == nil {
		return Config{}, fmt.Errorf("%s: no context %q", path, cxName)
	}
	var cfg Config
	found := false
	for _, c := range kc.Clusters {
		if c.Name == cx.Context.Cluster {
			cfg.Server = c.Cluster.Server
			ca, err := base64.StdEncoding.DecodeString(c.Cluster.CertificateAuthorityData)
			if err != nil {
				return Config{}, fmt.Errorf("%s: certificate-authority-data: %w", path, err)
			}
			cfg.CACert = ca
			found = true
		}
	}
	for _, u := range kc.Users {
		if u.Name == cx.Context.User {
			cfg.Token = u.User.Token
		}
	}
	if !found || cfg.Server == "" {
		return Config{}, errors.New(path + ": no server in the current context")
	}
	return cfg, nil
}
