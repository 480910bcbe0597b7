package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"go.etcd.io/bbolt"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// decode turns stored JSON into a typed object of kind k. TypeMeta is set from the
// kind, so objects written before a kind changed its apiVersion read as the current one.
func decode(k *api.KindInfo, b []byte) (api.Object, error) {
	obj := k.NewObject()
	if err := json.Unmarshal(b, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.Resource, err)
	}
	*obj.GetTypeMeta() = api.TypeMeta{APIVersion: k.APIVersion(), Kind: k.Kind}
	return obj, nil
}

// encode is the JSON the store files for obj. TypeMeta is always the kind's, so the
// bytes a watch sends on are a complete object.
func encode(k *api.KindInfo, obj api.Object) ([]byte, error) {
	*obj.GetTypeMeta() = api.TypeMeta{APIVersion: k.APIVersion(), Kind: k.Kind}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", k.Resource, err)
	}
	return b, nil
}

// clone returns a deep copy of obj that the store may stamp. Writes never touch the
// caller's object: callers share objects between goroutines, and a failed write must
// leave it as it was.
func clone(k *api.KindInfo, obj api.Object) (api.Object, error) {
	if v := reflect.ValueOf(obj); obj == nil || v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("%s: %w", k.Resource, &api.FieldError{Reason: "object is nil"})
	}
	if want := reflect.TypeOf(k.New()); reflect.TypeOf(obj) != want {
		return nil, fmt.Errorf("%s: %w", k.Resource, &api.FieldError{Field: "kind",
			Reason: fmt.Sprintf("got a %T where a %v was expected", obj, want)})
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", k.Resource, err)
	}
	return decode(k, b)
}

// eventRecord is an event as the events bucket holds it; the revision is the key.
type eventRecord struct {
	Type     EventType       `json:"type"`
	Resource string          `json:"resource"`
	Key      string          `json:"key"`
	Object   json.RawMessage `json:"object,omitempty"`
	// Sealed holds the object instead when a Sealer encrypted it (not JSON).
	Sealed []byte `json:"sealed,omitempty"`
}

func encodeEvent(ev Event) ([]byte, error) {
	rec := eventRecord{Type: ev.Type, Resource: ev.Resource, Key: ev.Key}
	if bytes.HasPrefix(ev.Object, sealedPrefix) {
		rec.Sealed = ev.Object
	} else {
		rec.Object = ev.Object
	}
	return json.Marshal(rec)
}

// decodeEvent reads a stored event. The result owns its bytes, so it outlives the
// transaction that read v.
func decodeEvent(rev uint64, v []byte) (Event, error) {
	var rec eventRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return Event{}, fmt.Errorf("event %d: %w", rev, err)
	}
	obj := []byte(rec.Object)
	if rec.Sealed != nil {
		obj = rec.Sealed
	}
	return Event{Type: rec.Type, Revision: rev, Resource: rec.Resource, Key: rec.Key, Object: obj}, nil
}

// revKey is the events bucket key of a revision.
func revKey(rev uint64) []byte { return binary.BigEndian.AppendUint64(nil, rev) }

var errCorrupt = errors.New("store: data file is corrupt")

// getUint reads an 8-byte big-endian number; a missing key reads as zero.
func getUint(b *bbolt.Bucket, key []byte) (uint64, error) {
	v := b.Get(key)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: meta %s is %d bytes, not 8", errCorrupt, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func putUint(b *bbolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, v))
}

// revOf is the revision an events bucket key holds; a malformed key reads as zero,
// which the log reader reports as a gap.
func revOf(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}
