#!/usr/bin/env bash
# Runs cloudbox's benchmarks with their peers (bare runc, podman, QEMU) installed from
# Debian. Run as root: bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

deps
apt_install runc podman
build
bin/cloudbox bench controlplane
bin/cloudbox bench pods
bin/cloudbox bench network
bin/cloudbox bench vm
