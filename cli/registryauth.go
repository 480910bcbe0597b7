package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/cloudbox/cloudbox/runtime/image"
)

// loadRegistryAuth reads registry credentials from a Docker config.json (what
// `docker login` writes: {"auths": {"HOST": {"auth": base64("user:password")}}}), so
// the same file serves both tools and no password sits on a command line.
func loadRegistryAuth(path string) (map[string]image.Credentials, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--registry-config: %w", err)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("--registry-config %s: %w", path, err)
	}
	out := map[string]image.Credentials{}
	for host, a := range cfg.Auths {
		c := image.Credentials{Username: a.Username, Password: a.Password}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("--registry-config %s: auths[%s].auth is not base64: %w", path, host, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("--registry-config %s: auths[%s].auth must encode user:password", path, host)
			}
			c = image.Credentials{Username: user, Password: pass}
		}
		host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://"), "/")
		out[host] = c
	}
	return out, nil
}
