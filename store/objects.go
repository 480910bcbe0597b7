package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// maxKeyLen keeps keys far below bbolt's 32 KiB limit, so that a Put can never fail on
// a key that passed objectKey; API validation is stricter still (253-byte names).
const maxKeyLen = 1024

// objectKey checks a kind's scope and returns the object's key: "namespace/name", or
// "name" for a cluster-scoped kind. Names may not contain '/', which would make keys
// ambiguous and break namespace prefix scans.
func objectKey(k *api.KindInfo, namespace, name string) (string, error) {
	var fe *api.FieldError
	switch {
	case k.Namespaced && namespace == "":
		fe = &api.FieldError{Field: "metadata.namespace", Reason: "required: " + k.Resource + " are namespaced"}
	case !k.Namespaced && namespace != "":
		fe = &api.FieldError{Field: "metadata.namespace", Reason: "must be empty: " + k.Resource + " are cluster-scoped"}
	case strings.Contains(namespace, "/"):
		fe = &api.FieldError{Field: "metadata.namespace", Reason: "must not contain '/'"}
	case name == "":
		fe = &api.FieldError{Field: "metadata.name", Reason: "required"}
	case strings.Contains(name, "/"):
		fe = &api.FieldError{Field: "metadata.name", Reason: "must not contain '/'"}
	case len(namespace)+1+len(name) > maxKeyLen:
		fe = &api.FieldError{Field: "metadata.name", Reason: fmt.Sprintf("namespace and name are longer than %d bytes", maxKeyLen)}
	}
	if fe != nil {
		return "", fmt.Errorf("%s %q: %w", k.Resource, name, fe)
	}
	if namespace == "" {
		return name, nil
	}
	return namespace + "/" + name, nil
}

// checkKind refuses a kind the store cannot file: it needs a bucket name and a
// constructor.
func checkKind(k *api.KindInfo) error {
	if k == nil || k.Resource == "" || k.New == nil {
		return fmt.Errorf("store: %w", &api.FieldError{Field: "kind", Reason: "not a registered kind"})
	}
	return nil
}

// Get returns the object filed under namespace/name.
func (b *Bolt) Get(ctx context.Context, k *api.KindInfo, namespace, name string) (api.Object, error) {
	if err := checkKind(k); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key, err := objectKey(k, namespace, name)
	if err != nil {
		return nil, err
	}
	var obj api.Object
	err = b.view(func(tx *bbolt.Tx) error {
		var v []byte
		if kb := kindBucket(tx, k); kb != nil {
			v = kb.Get([]byte(key))
		}
		if v == nil {
			return fmt.Errorf("%s %s: %w", k.Resource, key, ErrNotFound)
		}
		if v, err = b.sealer.Open(k.Resource, v); err != nil {
			return err
		}
		obj, err = decode(k, v)
		return err
	})
	return obj, err
}

// kindBucket returns the kind's bucket, or nil if the kind has never been written,
// which readers treat as empty.
func kindBucket(tx *bbolt.Tx, k *api.KindInfo) *bbolt.Bucket {
	return tx.Bucket(bucketObjects).Bucket([]byte(k.Resource))
}

// Create files a copy of obj under a new key, with a new uid, creationTimestamp,
// generation 1 (unless set) and the write's revision. An object with generateName and
// no name gets generateName plus five random characters. A resourceVersion on obj is
// ignored. obj itself is not modified; the stored copy is returned.
func (b *Bolt) Create(ctx context.Context, k *api.KindInfo, obj api.Object) (api.Object, error) {
	if err := checkKind(k); err != nil {
		return nil, err
	}
	cp, err := clone(k, obj)
	if err != nil {
		return nil, err
	}
	m := cp.GetObjectMeta()
	generate := m.Name == "" && m.GenerateName != ""
	name := m.Name
	if generate {
		// Check scope and the prefix now, with a stand-in for the random suffix.
		name = m.GenerateName + "xxxxx"
	}
	key, err := objectKey(k, m.Namespace, name)
	if err != nil {
		return nil, err
	}
	uid := uuid.NewString()

	return b.write(ctx, func(w *writeTx) (api.Object, error) {
		key := key
		if generate {
			var err error
			if key, err = w.freeName(k, m); err != nil {
				return nil, err
			}
		}
		if w.get(k, key) != nil {
			return nil, fmt.Errorf("%s %s: %w", k.Resource, key, ErrAlreadyExists)
		}
		m.UID = uid
		m.CreationTimestamp = api.Now()
		if m.Generation == 0 {
			m.Generation = 1
		}
		if err := w.record(k, key, Added, cp); err != nil {
			return nil, err
		}
		return cp, nil
	})
}

// nameAlphabet is what generated name suffixes are drawn from: lower case letters and
// digits, valid in any DNS label.
const nameAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// freeName sets m.Name to m.GenerateName plus a random suffix that no stored object of
// the kind uses, and returns its key. With 36^5 suffixes a collision is rare; after a
// few it gives up with ErrAlreadyExists, as Kubernetes does.
func (w *writeTx) freeName(k *api.KindInfo, m *api.ObjectMeta) (string, error) {
	var key string
	for range 8 {
		suffix := make([]byte, 5)
		for i := range suffix {
			suffix[i] = nameAlphabet[rand.IntN(len(nameAlphabet))]
		}
		m.Name = m.GenerateName + string(suffix)
		key = m.Key()
		if w.get(k, key) == nil {
			return key, nil
		}
	}
	return "", fmt.Errorf("%s %s: %w (no free name for generateName %q)", k.Resource, key, ErrAlreadyExists, m.GenerateName)
}

// Update replaces the stored object with a copy of obj; see Store.Update. Besides the
// resourceVersion precondition, a non-empty uid on obj must match the stored one, so
// that a write meant for an object that was deleted and re-created fails with
// ErrConflict. A zero generation keeps the stored one. obj itself is not modified.
func (b *Bolt) Update(ctx context.Context, k *api.KindInfo, obj api.Object) (api.Object, error) {
	if err := checkKind(k); err != nil {
		return nil, err
	}
	cp, err := clone(k, obj)
	if err != nil {
		return nil, err
	}
	return b.update(ctx, k, cp, cp.GetObjectMeta().ResourceVersion)
}

// update writes cp, which the store owns, if the stored resourceVersion is rv (any,
// when rv is empty).
func (b *Bolt) update(ctx context.Context, k *api.KindInfo, cp api.Object, rv string) (api.Object, error) {
	m := cp.GetObjectMeta()
	key, err := objectKey(k, m.Namespace, m.Name)
	if err != nil {
		return nil, err
	}
	uid, generation := m.UID, m.Generation

	return b.write(ctx, func(w *writeTx) (api.Object, error) {
		old, err := w.getObject(k, key)
		if err != nil {
			return nil, err
		}
		if old == nil {
			return nil, fmt.Errorf("%s %s: %w", k.Resource, key, ErrNotFound)
		}
		cur, err := decode(k, old)
		if err != nil {
			return nil, err
		}
		cm := cur.GetObjectMeta()
		if rv != "" && rv != cm.ResourceVersion {
			return nil, fmt.Errorf("%s %s: resourceVersion %s, stored %s: %w", k.Resource, key, rv, cm.ResourceVersion, ErrConflict)
		}
		if uid != "" && uid != cm.UID {
			return nil, fmt.Errorf("%s %s: uid %s, stored %s: %w", k.Resource, key, uid, cm.UID, ErrConflict)
		}
		m.UID = cm.UID
		m.CreationTimestamp = cm.CreationTimestamp
		m.Generation = generation
		if m.Generation == 0 {
			m.Generation = cm.Generation
		}
		if err := w.record(k, key, Modified, cp); err != nil {
			return nil, err
		}
		return cp, nil
	})
}

// GuaranteedUpdate reads the object, applies fn to it and writes the result with the
// read's resourceVersion as precondition. On ErrConflict it starts again with a fresh
// copy, until it succeeds, fn or the read fails, or ctx ends. fn runs outside the
// writer, so a slow fn delays only its own update. fn may modify and return its
// argument; it must keep the object's namespace and name.
func (b *Bolt) GuaranteedUpdate(ctx context.Context, k *api.KindInfo, namespace, name string, fn UpdateFunc) (api.Object, error) {
	if err := checkKind(k); err != nil {
		return nil, err
	}
	for {
		cur, err := b.Get(ctx, k, namespace, name)
		if err != nil {
			return nil, err
		}
		rv := cur.GetObjectMeta().ResourceVersion
		next, err := fn(cur)
		if err != nil {
			return nil, err
		}
		cp, err := clone(k, next)
		if err != nil {
			return nil, err
		}
		if nm := cp.GetObjectMeta(); nm.Namespace != namespace || nm.Name != name {
			return nil, fmt.Errorf("%s %s: %w", k.Resource, name, &api.FieldError{Field: "metadata.name",
				Reason: fmt.Sprintf("update changed the object's key to %q", nm.Key())})
		}
		out, err := b.update(ctx, k, cp, rv)
		if errors.Is(err, ErrConflict) {
			continue
		}
		return out, err
	}
}

// Delete removes the object and returns its last state, stamped with the delete's
// revision (the same bytes the DELETED event carries).
func (b *Bolt) Delete(ctx context.Context, k *api.KindInfo, namespace, name, resourceVersion string) (api.Object, error) {
	if err := checkKind(k); err != nil {
		return nil, err
	}
	key, err := objectKey(k, namespace, name)
	if err != nil {
		return nil, err
	}
	return b.write(ctx, func(w *writeTx) (api.Object, error) {
		old, err := w.getObject(k, key)
		if err != nil {
			return nil, err
		}
		if old == nil {
			return nil, fmt.Errorf("%s %s: %w", k.Resource, key, ErrNotFound)
		}
		cur, err := decode(k, old)
		if err != nil {
			return nil, err
		}
		if rv := cur.GetObjectMeta().ResourceVersion; resourceVersion != "" && resourceVersion != rv {
			return nil, fmt.Errorf("%s %s: resourceVersion %s, stored %s: %w", k.Resource, key, resourceVersion, rv, ErrConflict)
		}
		if err := w.record(k, key, Deleted, cur); err != nil {
			return nil, err
		}
		return cur, nil
	})
}
