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
# The sample VM's guest (Debian's cloud kernel and a busybox initramfs, built offline
# from Debian's packages into a cache); its kernel also serves the KVM probe.
log "building the sample VM's guest from Debian's packages (testdata/vm/build-guest.sh)"
guest=$(bash testdata/vm/build-guest.sh | tail -n1)
nohup cloudbox server --data-dir "$DATA_DIR" --listen "$LISTEN" --vm-probe-kernel "$guest/vmlinuz" >>"$DATA_DIR/server.log" 2>&1 &
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
log "importing the guest as a VM image and booting a sample VM"
cloudbox image rm guest >/dev/null 2>&1 || true
cloudbox image import --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" --cmdline "$(cat "$guest/cmdline")" --name guest
cloudbox vm delete demo --wait >/dev/null 2>&1 || true
printf '#cloud-config\n# hello from the cloudbox README\n' > "$DATA_DIR/demo-user-data"
cloudbox vm create demo --image guest --flavor m1.tiny --user-data "$DATA_DIR/demo-user-data" --wait --timeout 5m
for _ in $(seq 1 300); do
  cloudbox vm console-log demo 2>/dev/null | grep -q 'cloudbox-guest: ready' && break
  sleep 0.2
done
cloudbox vm list -o wide
log "the sample VM's console log (cloudbox vm console-log demo)"
cloudbox vm console-log demo
vmip=$(cloudbox get instance demo -o json | sed -n 's/.*"address": "\([0-9.]*\)".*/\1/p')
if [ -n "$vmip" ]; then
  log "the sample VM's web page (http://${vmip}/)"
  curl -s --max-time 5 "http://${vmip}/" || echo "(no answer from the VM yet)"
fi
cat <<MSG

cloudbox is running. Try:
  export CLOUDBOX_CONFIG=$DATA_DIR/admin.config
  cloudbox get nodes,pods -A         cloudbox describe deploy web
  cloudbox get svc web               cloudbox exec ${pod#pod/} -- wget -qO- http://web/
  cloudbox vm list                   cloudbox vm console demo      (Ctrl-] detaches)
  cloudbox vm stop demo              cloudbox volume create data --size 1 && cloudbox volume attach data demo
  cloudbox server --cleanup --data-dir $DATA_DIR    # stop it and remove its state
MSG
