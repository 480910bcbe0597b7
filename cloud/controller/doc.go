// Package controller holds the control plane's reconcile loops, one file each. They
// read through the process's shared informer factory (one cache per kind, with
// indexes by namespace, owner, controller and node) and write through the API
// client; none holds the store. Time comes from the one Clock in Deps.
//
// A queue-driven controller embeds base (toolkit.go), which owns its work queue,
// event recorder, workers and every goroutine they start; it adds its handlers to
// the factory's typed informers when it is made and calls base.runQueue with its
// sync function from Run. The pieces several controllers share have files of their
// own: expectations.go (writes not yet seen in the cache), adoption.go (claiming by
// selector), podcontrol.go (pods from templates, created and deleted with events),
// history.go (ControllerRevisions), typed.go (typed reads and writes).
package controller
