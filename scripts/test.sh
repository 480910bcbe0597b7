#!/usr/bin/env bash
# Runs cloudbox's whole test suite: vet, build, unit and end-to-end tests. Run as
# root on Debian (the real-component tests need root): bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

deps
log "go vet"
go vet ./...
(cd compat && go vet ./...)
build
log "go test"
# The end-to-end tests start bin/cloudbox; they find it through CLOUDBOX_BIN.
export CLOUDBOX_BIN="$PWD/bin/cloudbox"
start=$(date +%s)
status=0
go test -count=1 -timeout 45m ./... 2>&1 | tee /tmp/cloudbox-test.log || status=$?
# The compatibility suite (a real kubectl against bin/cloudbox) is a module of its
# own, so that its k8s.io code stays out of the binary; its packages count alike.
log "go test (compat)"
(cd compat && go test -count=1 -timeout 30m ./...) 2>&1 | tee -a /tmp/cloudbox-test.log || status=$?
passed=$(grep -cE '^ok\s' /tmp/cloudbox-test.log || true)
failed=$(grep -E '^FAIL\s+\S' /tmp/cloudbox-test.log | awk '{print $2}' | sort -u || true)
elapsed=$(($(date +%s) - start))
summary="$passed packages passed, $(echo -n "$failed" | grep -c . || true) failed in $((elapsed / 60))m$((elapsed % 60))s (log: /tmp/cloudbox-test.log)"
if [ "$status" -ne 0 ]; then
  log "FAIL: $summary${failed:+; failed: $(echo $failed)}"
  exit "$status"
fi
log "PASS: $summary"
