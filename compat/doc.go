// Package compat holds cloudbox's compatibility suite: tests that run real Kubernetes
// clients (kubectl today; client-go and Helm are to follow) against a real cloudbox
// server, started from the binary that $CLOUDBOX_BIN names.
//
// It is a module of its own so that the k8s.io code it builds never reaches the
// cloudbox binary or the main module's dependencies. Its programs are under cmd/
// (cmd/kubectl is kubectl itself); the tests build them once per run. Run it as root
// after building bin/cloudbox:
//
//	cd compat && CLOUDBOX_BIN=$PWD/../bin/cloudbox go test -count=1 ./...
package compat
