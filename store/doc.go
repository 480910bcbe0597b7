// Package store keeps cloudbox's objects. The interface is narrow (Get, List, Create,
// Update, Delete, Watch) so that a second backend on a distributed engine can follow;
// everything bbolt-specific stays in this package.
//
// # The bbolt file
//
// Bolt keeps everything in one bbolt file in the data dir:
//
//	meta/
//	  schema     uint64  schema version the file has been migrated to (migrate.go)
//	  revision   uint64  revision of the last committed write
//	  compacted  uint64  events at or below this revision have been deleted
//	objects/
//	  <resource>/               one bucket per kind, named by KindInfo.Resource ("pods"),
//	                            created by the kind's first write
//	    <namespace>/<name>  ->  JSON of the object ("<name>" for cluster-scoped kinds)
//	events/
//	  <revision>            ->  JSON {"type", "resource", "key", "object"}
//
// Numbers (meta values and event keys) are 8-byte big-endian, so that events sort by
// revision. The kind buckets sit under objects/ rather than at the top so that no
// resource name can collide with meta or events (Kubernetes's own Event kind is served
// as "events").
//
// # Revisions, events and watches
//
// Every write takes the next revision, stamps it into metadata.resourceVersion and
// appends exactly one event under that revision, in the same transaction. Revisions
// are therefore dense: the log holds every revision from compacted+1 to revision,
// which is what lets a watch resume from any revision after a disconnect or a
// restart, and lets a caller that gets ErrGone know it must list again.
//
// Writes go through a single writer goroutine that commits many of them in one
// fsynced transaction (group commit, write.go); events reach watchers only after that
// commit (watch.go).
package store
