#!/usr/bin/env bash
# Installs what cloudbox needs, builds it, starts an all-in-one server and applies the
# sample app. Run as root on Debian: bash scripts/up.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

DATA_DIR=${CLOUDBOX_DATA_DIR:-/var/lib/cloudbox}
LISTEN=${CLOUDBOX_LISTEN:-0.0.0.0:6443}

deps
build
install -m 0755 bin/cloudbox /usr/local/bin/cloudbox

if [ -f "$DATA_DIR/server.pid" ] && kill -0 "$(cat "$DATA_DIR/server.pid")" 2>/dev/null; then
  log "a cloudbox server is already running (pid $(cat "$DATA_DIR/server.pid")); restarting it"
  kill "$(cat "$DATA_DIR/server.pid")"
  while kill -0 "$(cat "$DATA_DIR/server.pid" 2>/dev/null || echo 0)" 2>/dev/null; do sleep 0.2; done
fi
mkdir -p "$DATA_DIR"
log "starting cloudbox server (all-in-one); log in $DATA_DIR/server.log"
nohup cloudbox server --data-dir "$DATA_DIR" --listen "$LISTEN" >>"$DATA_DIR/server.log" 2>&1 &
export CLOUDBOX_CONFIG="$DATA_DIR/admin.config"
for _ in $(seq 1 300); do
  cloudbox get nodes >/dev/null 2>&1 && break
  sleep 0.1
done
cloudbox get nodes -o wide

# The machine may have no registry access: the sample image is built offline from
# Debian's busybox-static and imported into the node's image store.
log "building the busybox image from busybox-static and importing it"
img_dir=$(mktemp -d)
bash testdata/images/build-busybox.sh "$img_dir" 1.36 >/dev/null
cloudbox image import "$img_dir/busybox.tar"
rm -rf "$img_dir"

log "applying the sample app (testdata/manifests/sample-app.yaml)"
cloudbox apply -f testdata/manifests/sample-app.yaml
cloudbox rollout status deploy/web --timeout 2m
cloudbox get deploy,pods,svc -o wide
pod=$(cloudbox get pods -l app=web -o name | head -n1)
log "the sample app's log (${pod})"
cloudbox logs "${pod#pod/}"
ip=$(cloudbox get svc web -o json | sed -n 's/.*"clusterIP": "\([0-9.]*\)".*/\1/p')
log "the sample app through its Service (http://${ip}/)"
curl -s --max-time 5 "http://${ip}/" || echo "(no answer from the Service yet)"
cat <<MSG

cloudbox is running. Try:
  export CLOUDBOX_CONFIG=$DATA_DIR/admin.config
  cloudbox get nodes,pods -A         cloudbox describe deploy web
  cloudbox get svc web               cloudbox exec ${pod#pod/} -- wget -qO- http://web/
  cloudbox server --cleanup --data-dir $DATA_DIR    # stop it and remove its state
MSG
