package apiserver

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudbox/cloudbox/internal/atomicfile"
)

// User is who a request comes from.
type User struct {
	Name string
	// Admin may do anything; a node identity (an agent that joined with the join
	// token) may read everything and write nodes and pods, but not namespaces or the
	// admin endpoints.
	Admin bool
}

// Tokens holds the bearer tokens the API accepts. The zero value accepts nothing.
type Tokens struct {
	// Admin is the administrator's bearer token, written to admin.config.
	Admin string
	// NodeSecret is the secret part of the join token that workers present.
	NodeSecret string
}

// EnsureTokens loads the admin token and the node join secret from dir, creating
// them on first start (files admin.token and node.secret, mode 0600).
func EnsureTokens(dir string) (*Tokens, error) {
	admin, err := ensureSecret(filepath.Join(dir, "admin.token"))
	if err != nil {
		return nil, err
	}
	node, err := ensureSecret(filepath.Join(dir, "node.secret"))
	if err != nil {
		return nil, err
	}
	return &Tokens{Admin: admin, NodeSecret: node}, nil
}

func ensureSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	s := hex.EncodeToString(raw)
	if err := atomicfile.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return s, nil
}

// JoinToken is what a worker passes as --token: it pins the CA by hash so the worker
// can trust the master on first contact, and carries the node secret
// ("K10<ca-sha256>::node:<secret>", the shape k3s uses).
func JoinToken(caPEM []byte, nodeSecret string) string {
	return "K10" + CAHash(caPEM) + "::node:" + nodeSecret
}

// ParseJoinToken splits a join token into the CA hash and the bearer secret. A bare
// secret (no K10 prefix) is accepted with an empty hash, in which case the caller
// must already trust the CA.
func ParseJoinToken(tok string) (caHash, secret string, err error) {
	if !strings.HasPrefix(tok, "K10") {
		if tok == "" {
			return "", "", errors.New("join token is empty")
		}
		return "", tok, nil
	}
	rest := strings.TrimPrefix(tok, "K10")
	hash, cred, ok := strings.Cut(rest, "::")
	if !ok || len(hash) != 64 {
		return "", "", errors.New(`join token is malformed: want "K10<sha256 of CA>::node:<secret>"`)
	}
	_, secret, ok = strings.Cut(cred, ":")
	if !ok || secret == "" {
		return "", "", errors.New(`join token is malformed: want "K10<sha256 of CA>::node:<secret>"`)
	}
	return hash, secret, nil
}

// authenticate returns the user a request's bearer token names, or nil.
func (t *Tokens) authenticate(r *http.Request) *User {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return nil
	}
	tok = strings.TrimSpace(tok)
	if t.Admin != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(t.Admin)) == 1 {
		return &User{Name: "admin", Admin: true}
	}
	if t.NodeSecret != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(t.NodeSecret)) == 1 {
		return &User{Name: "system:node"}
	}
	return nil
}

// allowed reports whether user may do verb on resource (and subresource). Nodes may
// read anything, write only what an agent writes, and open their tunnel; exec is for
// administrators.
func (u *User) allowed(verb, resource, sub string) bool {
	if u.Admin {
		return true
	}
	switch sub {
	case "exec", "images":
		return false
	case "tunnel":
		return true
	}
	switch verb {
	case "get", "list", "watch":
		return true
	}
	switch resource {
	case "nodes", "pods", "events", "persistentvolumeclaims": // agents bind claims to their node
		return true
	case "instances", "volumes": // a node reports its VMs and where their volumes live
		return sub == "status"
	}
	return false
}
