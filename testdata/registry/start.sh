#!/usr/bin/env bash
# Starts Debian's docker-registry on loopback and pushes the busybox image built by
# testdata/images/build-busybox.sh to it as library/busybox:TAG, so that
# `--registry-mirror docker.io=http://127.0.0.1:PORT` resolves `busybox:TAG` offline.
#
#   testdata/registry/start.sh OCI_DIR [PORT] [TAG]    (prints the registry's pid)
# Stop it with: kill PID
set -euo pipefail
oci=${1:?usage: start.sh OCI_DIR [PORT] [TAG]}
port=${2:-5000}
tag=${3:-1.36}
command -v docker-registry >/dev/null || { echo "install docker-registry" >&2; exit 1; }
dir=$(mktemp -d /tmp/cloudbox-registry.XXXXXX)
cat >"$dir/config.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/registry.log" >&2; exit 1; }
  sleep 0.1
done
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$oci:$tag" "docker://127.0.0.1:$port/library/busybox:$tag"
echo "$pid"
