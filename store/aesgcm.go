package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cloudbox/cloudbox/internal/atomicfile"
)

// sealedPrefix marks a sealed value; stored JSON always starts with '{', so plaintext
// written before sealing was turned on is told apart without guessing.
var sealedPrefix = []byte("cbxenc1:")

// KeyRing seals the values of some resources with AES-256-GCM under keys kept in a
// file of the data dir (mode 0600). The newest key seals; every key opens, so that
// rotation can re-seal at leisure. It is safe for concurrent use.
type KeyRing struct {
	path      string
	resources map[string]bool

	mu      sync.RWMutex
	primary string
	keys    map[string]cipher.AEAD
	raw     []keyEntry
}

type keyEntry struct {
	ID  string `json:"id"`
	Key string `json:"key"` // base64 of 32 bytes
}

type keyFile struct {
	Primary string     `json:"primary"`
	Keys    []keyEntry `json:"keys"`
}

var _ Sealer = (*KeyRing)(nil)

// OpenKeyRing loads the keys at path, creating the file with a first key if it does
// not exist, and seals the named resources (e.g. "secrets").
func OpenKeyRing(path string, resources ...string) (*KeyRing, error) {
	kr := &KeyRing{path: path, resources: map[string]bool{}, keys: map[string]cipher.AEAD{}}
	for _, r := range resources {
		kr.resources[r] = true
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := kr.Rotate(); err != nil {
			return nil, err
		}
		return kr, nil
	}
	if err != nil {
		return nil, err
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range f.Keys {
		if err := kr.add(e); err != nil {
			return nil, fmt.Errorf("%s: key %s: %w", path, e.ID, err)
		}
	}
	if _, ok := kr.keys[f.Primary]; !ok {
		return nil, fmt.Errorf("%s: primary key %q is not in the file", path, f.Primary)
	}
	kr.primary = f.Primary
	return kr, nil
}

func (kr *KeyRing) add(e keyEntry) error {
	key, err := base64.StdEncoding.DecodeString(e.Key)
	if err != nil || len(key) != 32 {
		return errors.New("key must be 32 bytes, base64")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	kr.keys[e.ID] = aead
	kr.raw = append(kr.raw, e)
	return nil
}

// Rotate makes a new key the one that seals, and saves the key file. Values sealed
// under older keys still open; writing them again re-seals them with the new key.
func (kr *KeyRing) Rotate() error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	id := fmt.Sprintf("k%d", len(kr.raw)+1)
	if err := kr.add(keyEntry{ID: id, Key: base64.StdEncoding.EncodeToString(key)}); err != nil {
		return err
	}
	prev := kr.primary
	kr.primary = id
	data, err := json.MarshalIndent(keyFile{Primary: id, Keys: kr.raw}, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(kr.path, data, 0o600)
	}
	if err != nil {
		kr.primary = prev
		kr.raw = kr.raw[:len(kr.raw)-1]
		delete(kr.keys, id)
		return fmt.Errorf("save encryption keys: %w", err)
	}
	return nil
}

// Primary is the ID of the key that seals.
func (kr *KeyRing) Primary() string {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.primary
}

// Seal encrypts plaintext if resource is one the ring seals.
func (kr *KeyRing) Seal(resource string, plaintext []byte) ([]byte, error) {
	if !kr.resources[resource] {
		return plaintext, nil
	}
	kr.mu.RLock()
	id, aead := kr.primary, kr.keys[kr.primary]
	kr.mu.RUnlock()
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(append(append([]byte{}, sealedPrefix...), id...), ':')
	out = append(out, nonce...)
	// The resource is authenticated with the value, so a sealed secret cannot be
	// moved into another resource's bucket and opened there.
	return aead.Seal(out, nonce, plaintext, []byte(resource)), nil
}

// Open decrypts a sealed value; anything else is returned as it is.
func (kr *KeyRing) Open(resource string, stored []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(stored, sealedPrefix)
	if !ok {
		return stored, nil
	}
	id, body, ok := bytes.Cut(rest, []byte(":"))
	if !ok {
		return nil, fmt.Errorf("%s: sealed value is malformed: %w", resource, errCorrupt)
	}
	kr.mu.RLock()
	aead := kr.keys[string(id)]
	kr.mu.RUnlock()
	if aead == nil {
		return nil, fmt.Errorf("%s: sealed with key %q, which is not in %s", resource, id, kr.path)
	}
	if len(body) < aead.NonceSize() {
		return nil, fmt.Errorf("%s: sealed value is malformed: %w", resource, errCorrupt)
	}
	plain, err := aead.Open(nil, body[:aead.NonceSize()], body[aead.NonceSize():], []byte(resource))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot decrypt (wrong key file?): %w", resource, err)
	}
	return plain, nil
}
