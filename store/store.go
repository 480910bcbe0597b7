package store

import (
	"context"
	"errors"
	"io"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Sentinel errors, wrapped with context by the store and turned into HTTP statuses
// once, at the API edge.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict means the object changed since the caller read it (its
	// resourceVersion moved): read it again and retry.
	ErrConflict = errors.New("the object has been modified; read it again and retry")
	// ErrGone means a watch asked for a revision older than the compacted history:
	// list again and watch from the list's revision.
	ErrGone = errors.New("requested revision has been compacted")
	// ErrLocked means another process holds the data dir.
	ErrLocked = errors.New("data dir is locked")
)

// EventType is what happened to an object.
type EventType string

// Event types, spelled as Kubernetes spells them on the wire.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one change to one object. Object is the JSON of the object after the
// change; for a delete, its last state stamped with the delete's revision. A watch
// that cannot go on sends a last Event with Err set and closes its channel.
type Event struct {
	Type     EventType
	Revision uint64
	Resource string // the kind's resource name, e.g. "pods"
	Key      string // "namespace/name" or "name"
	Object   []byte
	Err      error
}

// Decode returns the event's object as a typed value.
func (e Event) Decode() (api.Object, error) {
	k, ok := api.LookupKind(e.Resource)
	if !ok {
		return nil, errors.New("store: unknown resource " + e.Resource)
	}
	return decode(k, e.Object)
}

// ListOptions narrows a List.
type ListOptions struct {
	// Namespace limits the list to one namespace; empty means all.
	Namespace string
	// Predicate, if not nil, keeps only the objects it returns true for (label and
	// field selectors). It runs before Limit counts.
	Predicate func(api.Object) bool
	// Limit is the most items to return; 0 means no limit.
	Limit int
	// Continue is the token a previous page returned.
	Continue string
}

// ListResult is one page of a list.
type ListResult struct {
	Items []api.Object
	// Revision is the store revision the list was read at: watch from it to see
	// every later change.
	Revision uint64
	// Continue is non-empty when more items follow; pass it back to get them.
	Continue string
}

// WatchOptions narrows a Watch.
type WatchOptions struct {
	Namespace string
	// FromRevision delivers every event after this revision. Zero means "from now".
	FromRevision uint64
}

// UpdateFunc computes an object's next state from its current one. Returning an error
// aborts the update with that error.
type UpdateFunc func(current api.Object) (api.Object, error)

// Store is the object store. Methods are safe for concurrent use; a write returns only
// after it is durable on disk.
type Store interface {
	// Create stores a new object, setting uid, creationTimestamp and
	// resourceVersion. It fails with ErrAlreadyExists if the key is taken.
	Create(ctx context.Context, kind *api.KindInfo, obj api.Object) (api.Object, error)
	// Get returns the object, or ErrNotFound.
	Get(ctx context.Context, kind *api.KindInfo, namespace, name string) (api.Object, error)
	// List returns the objects of a kind in key order, a page at a time.
	List(ctx context.Context, kind *api.KindInfo, opts ListOptions) (*ListResult, error)
	// Update replaces an object. If obj carries a resourceVersion it must equal the
	// stored one, or the update fails with ErrConflict; an empty one updates
	// unconditionally. uid and creationTimestamp are kept from the stored object.
	Update(ctx context.Context, kind *api.KindInfo, obj api.Object) (api.Object, error)
	// GuaranteedUpdate reads the object, applies fn and writes the result, retrying
	// fn on a concurrent change.
	GuaranteedUpdate(ctx context.Context, kind *api.KindInfo, namespace, name string, fn UpdateFunc) (api.Object, error)
	// Delete removes an object and returns its last state. A non-empty
	// resourceVersion is a precondition, as for Update.
	Delete(ctx context.Context, kind *api.KindInfo, namespace, name, resourceVersion string) (api.Object, error)
	// Watch streams the changes to a kind after opts.FromRevision, in revision order,
	// until ctx is cancelled. It fails with ErrGone if that revision was compacted.
	Watch(ctx context.Context, kind *api.KindInfo, opts WatchOptions) (<-chan Event, error)
	// Follow is Watch read in the caller's goroutine, without a goroutine and
	// channel of its own: see Watcher.
	Follow(kind *api.KindInfo, opts WatchOptions) (*Watcher, error)
	// Revision is the revision of the last committed write.
	Revision() uint64
	// Backup writes a consistent copy of the whole store to w.
	Backup(w io.Writer) (int64, error)
	// Stats reports sizes for metrics.
	Stats() Stats
	Close() error
}

// Stats are the store's sizes, exported as metrics.
type Stats struct {
	Revision          uint64
	CompactedRevision uint64
	FileBytes         int64
	Objects           map[string]int // per resource
}
