package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// List returns the kind's objects in key order, one page at a time; see ListOptions.
// Each page is read in one transaction, so it is consistent in itself and its
// Revision is the one that transaction saw. Pages are not one snapshot: an object
// created or deleted between pages shows up (or not) by where its key falls, as with
// Kubernetes's continue tokens after their snapshot has expired.
func (b *Bolt) List(ctx context.Context, k *api.KindInfo, opts ListOptions) (*ListResult, error) {
	if err := checkKind(k); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Namespace != "" && !k.Namespaced {
		return nil, fmt.Errorf("%s: %w", k.Resource, &api.FieldError{Field: "namespace", Reason: k.Resource + " are cluster-scoped"})
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("%s: %w", k.Resource, &api.FieldError{Field: "limit", Reason: "must not be negative"})
	}
	var prefix []byte
	if opts.Namespace != "" {
		prefix = []byte(opts.Namespace + "/")
	}
	var after []byte
	if opts.Continue != "" {
		key, err := decodeContinue(opts.Continue)
		if err != nil || !bytes.HasPrefix(key, prefix) {
			return nil, fmt.Errorf("%s: %w", k.Resource, &api.FieldError{Field: "continue", Reason: "malformed or from another list"})
		}
		after = key
	}

	res := &ListResult{Items: []api.Object{}}
	err := b.view(func(tx *bbolt.Tx) error {
		var err error
		if res.Revision, err = getUint(tx.Bucket(bucketMeta), keyRevision); err != nil {
			return err
		}
		kb := kindBucket(tx, k)
		if kb == nil {
			return nil
		}
		c := kb.Cursor()
		var key, v []byte
		if after != nil {
			key, v = c.Seek(after)
			if bytes.Equal(key, after) {
				key, v = c.Next()
			}
		} else {
			key, v = c.Seek(prefix)
		}
		for ; key != nil && bytes.HasPrefix(key, prefix); key, v = c.Next() {
			if opts.Limit > 0 && len(res.Items) == opts.Limit {
				// More keys follow, whether or not Predicate keeps them: the next page
				// finds out. Checking here costs no decode.
				res.Continue = encodeContinue(after)
				return nil
			}
			plain, err := b.sealer.Open(k.Resource, v)
			if err != nil {
				return fmt.Errorf("%s %s: %w", k.Resource, key, err)
			}
			obj, err := decode(k, plain)
			if err != nil {
				return fmt.Errorf("%s %s: %w", k.Resource, key, err)
			}
			after = key
			if opts.Predicate != nil && !opts.Predicate(obj) {
				continue
			}
			res.Items = append(res.Items, obj)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// continueToken is what a continue token encodes. It is versioned so that a later
// format (say, one carrying the revision for consistent pagination) can reject or
// read an old one.
type continueToken struct {
	V   int    `json:"v"`
	Key string `json:"k"`
}

// encodeContinue makes the opaque token for "the page after key". key may point into
// bbolt's memory; the token copies it.
func encodeContinue(key []byte) string {
	b, _ := json.Marshal(continueToken{V: 1, Key: string(key)})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, err
	}
	var t continueToken
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, err
	}
	if t.V != 1 || t.Key == "" {
		return nil, fmt.Errorf("unknown continue token")
	}
	return []byte(t.Key), nil
}
