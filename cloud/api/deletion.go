package api

// Propagation policies of a delete (DeleteOptions.propagationPolicy): what becomes of
// the objects whose ownerReferences name the deleted one.
const (
	// PropagationBackground deletes the owner at once; the garbage collector then
	// deletes the dependents. It is the default.
	PropagationBackground = "Background"
	// PropagationForeground marks the owner (finalizer FinalizerForegroundDeletion);
	// the garbage collector deletes the dependents, and removes the owner once those
	// whose reference says blockOwnerDeletion are gone.
	PropagationForeground = "Foreground"
	// PropagationOrphan keeps the dependents and removes their references to the owner.
	PropagationOrphan = "Orphan"
)

// Finalizers the control plane acts on. An object with finalizers is only marked
// when deleted (metadata.deletionTimestamp); it is removed when an update empties
// its finalizers.
const (
	// FinalizerOrphan is set by a delete with PropagationOrphan; the garbage
	// collector removes it once no dependent refers to the object.
	FinalizerOrphan = "orphan"
	// FinalizerKubernetes is set on a namespace being deleted; the namespace
	// controller removes it once the namespace is empty.
	FinalizerKubernetes = "kubernetes"
	// FinalizerForegroundDeletion is set by a delete with PropagationForeground; the
	// garbage collector removes it once no dependent blocks the owner's deletion.
	FinalizerForegroundDeletion = "foregroundDeletion"
)

// HasFinalizer reports whether m lists finalizer f.
func (m *ObjectMeta) HasFinalizer(f string) bool {
	for _, x := range m.Finalizers {
		if x == f {
			return true
		}
	}
	return false
}

// RemoveFinalizer drops finalizer f from m and reports whether it was there.
func (m *ObjectMeta) RemoveFinalizer(f string) bool {
	out := m.Finalizers[:0:0]
	for _, x := range m.Finalizers {
		if x != f {
			out = append(out, x)
		}
	}
	found := len(out) != len(m.Finalizers)
	m.Finalizers = out
	if len(m.Finalizers) == 0 {
		m.Finalizers = nil
	}
	return found
}
