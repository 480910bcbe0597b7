package api

import "reflect"

// KindOfType returns the registered kind of the Go type T (a pointer type such as
// *Pod). It panics when T was never registered: that is a programming error, not
// input to handle.
func KindOfType[T Object]() *KindInfo {
	var zero T
	k, ok := kindsByType[reflect.TypeOf(zero)]
	if !ok {
		panic("api: no kind registered for " + reflect.TypeOf(zero).String())
	}
	return k
}

// MustKind finds a kind by one of its names as LookupKind does, and panics when none
// matches; it is for names written in the code, never for user input.
func MustKind(name string) *KindInfo {
	k, ok := LookupKind(name)
	if !ok {
		panic("api: no kind named " + name)
	}
	return k
}
