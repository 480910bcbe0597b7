package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadRegistryAuth(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config.json")
	os.WriteFile(good, []byte(`{"auths":{"https://registry.example:5000/":{"auth":"YWxpY2U6czNjcmV0"},"plain.example":{"username":"bob","password":"pw"}}}`), 0o600)
	auth, err := loadRegistryAuth(good)
	if err != nil {
		t.Fatal(err)
	}
	if c := auth["registry.example:5000"]; c.Username != "alice" || c.Password != "s3cret" {
		t.Errorf("auth from base64: %+v", c)
	}
	if c := auth["plain.example"]; c.Username != "bob" || c.Password != "pw" {
		t.Errorf("auth from fields: %+v", c)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"auths":{"x":{"auth":"bm9jb2xvbg=="}}}`), 0o600)
	if _, err := loadRegistryAuth(bad); err == nil || !strings.Contains(err.Error(), "user:password") {
		t.Errorf("auth without a colon: %v", err)
	}
}
