#!/usr/bin/env bash
# Runs cloudbox's whole test suite: vet, build, unit and end-to-end tests. Run as
# root on Debian (the real-component tests need root): bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

deps
log "go vet"
go vet ./...
build
log "go test"
# The end-to-end tests start bin/cloudbox; they find it through CLOUDBOX_BIN.
export CLOUDBOX_BIN="$PWD/bin/cloudbox"
go test -count=1 -timeout 45m ./... 2>&1 | tee /tmp/cloudbox-test.log
