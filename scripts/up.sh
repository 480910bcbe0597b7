#!/usr/bin/env bash
# Installs what cloudbox needs, builds it, starts an all-in-one server and applies the
# sample app. Run as root on Debian: bash scripts/up.sh
#
# Every step waits for what the next one needs, within a bound; on a timeout the
# script says what it waited for, prints the end of the server's log and exits 1.
# Running it again restarts the server and ends in the same state.
#
# The environment may change where and how the server runs (defaults in brackets):
#   CLOUDBOX_DATA_DIR [/var/lib/cloudbox]     CLOUDBOX_LISTEN [0.0.0.0:6443]
#   CLOUDBOX_BRIDGE [cbx0]                    CLOUDBOX_CGROUP_PARENT [/cloudbox]
#   CLOUDBOX_CLUSTER_CIDR [10.244.0.0/16]     CLOUDBOX_SERVICE_CIDR [10.96.0.0/16]
#   CLOUDBOX_BIN_DIR [/usr/local/bin]: where the binary is installed
#   CLOUDBOX_TIMEOUT [3m]: the bound of each wait
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

DATA_DIR=${CLOUDBOX_DATA_DIR:-/var/lib/cloudbox}
LISTEN=${CLOUDBOX_LISTEN:-0.0.0.0:6443}
BRIDGE=${CLOUDBOX_BRIDGE:-cbx0}
CGROUP_PARENT=${CLOUDBOX_CGROUP_PARENT:-/cloudbox}
CLUSTER_CIDR=${CLOUDBOX_CLUSTER_CIDR:-10.244.0.0/16}
SERVICE_CIDR=${CLOUDBOX_SERVICE_CIDR:-10.96.0.0/16}
BIN_DIR=${CLOUDBOX_BIN_DIR:-/usr/local/bin}
TIMEOUT=${CLOUDBOX_TIMEOUT:-3m}
export PATH="$BIN_DIR:$PATH"

# give_up says what was waited for, shows the end of the server's log, and exits 1.
give_up() {
  echo "up.sh: gave up waiting for $1" >&2
  if [ -f "$DATA_DIR/server.log" ]; then
    echo "---- the last lines of $DATA_DIR/server.log ----" >&2
    tail -n 40 "$DATA_DIR/server.log" >&2
  fi
  exit 1
}

# step runs a command that waits within its own bound (cloudbox wait, rollout status,
# vm create --wait) and gives up with the description if it fails.
step() {
  local what=$1
  shift
  "$@" || give_up "$what"
}

# poll retries a command that has no waiting of its own (an HTTP request, a look at
# the console log) every half second, for at most TIMEOUT.
poll() {
  local what=$1
  shift
  local deadline=$(($(date +%s) + $(seconds "$TIMEOUT")))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || give_up "$what (for $TIMEOUT)"
    sleep 0.5
  done
}

# fetch prints a page, failing on an error or an empty answer (a packet that missed
# the Service's rules may be answered by whatever the default route leads to).
fetch() {
  local page
  page=$(curl -sf --max-time 5 "$1") && [ -n "$page" ] && echo "$page"
}

# seconds turns 90, 90s, 3m or 1h into seconds.
seconds() {
  case $1 in
    *h) echo $((${1%h} * 3600)) ;;
    *m) echo $((${1%m} * 60)) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}

deps
build
mkdir -p "$BIN_DIR"
install -m 0755 bin/cloudbox "$BIN_DIR/cloudbox"

if [ -f "$DATA_DIR/server.pid" ] && kill -0 "$(cat "$DATA_DIR/server.pid")" 2>/dev/null; then
  pid=$(cat "$DATA_DIR/server.pid")
  log "a cloudbox server is already running (pid $pid); restarting it"
  kill "$pid"
  # Workloads outlive the server; only the server process itself must be gone.
  timeout 60 tail --pid="$pid" -f /dev/null || give_up "the old server (pid $pid) to exit"
fi
mkdir -p "$DATA_DIR"
# The sample VM's guest (Debian's cloud kernel and a busybox initramfs, built offline
# from Debian's packages into a cache); its kernel also serves the KVM probe.
log "building the sample VM's guest from Debian's packages (testdata/vm/build-guest.sh)"
guest=$(bash testdata/vm/build-guest.sh | tail -n1)
log "starting cloudbox server (all-in-one); log in $DATA_DIR/server.log"
nohup cloudbox server --data-dir "$DATA_DIR" --listen "$LISTEN" --bridge "$BRIDGE" \
  --cgroup-parent "$CGROUP_PARENT" --cluster-cidr "$CLUSTER_CIDR" --service-cidr "$SERVICE_CIDR" \
  --vm-probe-kernel "$guest/vmlinuz" >>"$DATA_DIR/server.log" 2>&1 &
export CLOUDBOX_CONFIG="$DATA_DIR/admin.config"

# The node registers after its VM accelerator probe, which may take its full 3 s:
# nothing is imported or applied before the node is Ready and has its pod subnet.
log "waiting for the node to be Ready and to have its pod network"
step "the node to be Ready" cloudbox wait --for=condition=Ready node --all --timeout "$TIMEOUT"
step "the node's pod subnet (spec.podCIDR)" cloudbox wait --for=jsonpath='{.spec.podCIDR}' node --all --timeout "$TIMEOUT"
cloudbox get nodes -o wide

# The machine may have no registry access: the sample image is built offline from
# Debian's busybox-static and imported into the node's image store.
log "building the busybox image from busybox-static and importing it"
img_dir=$(mktemp -d)
bash testdata/images/build-busybox.sh "$img_dir" 1.36 >/dev/null
step "the image import" cloudbox image import "$img_dir/busybox.tar"
rm -rf "$img_dir"

log "applying the sample app (testdata/manifests/sample-app.yaml)"
step "applying the sample app" cloudbox apply -f testdata/manifests/sample-app.yaml
step "the rollout of deploy/web" cloudbox rollout status deploy/web --timeout "$TIMEOUT"
cloudbox get deploy,pods,svc -o wide
pod=$(cloudbox get pods -l app=web -o name | sed -n 1p) # sed reads it all: no SIGPIPE under pipefail
log "the sample app's log (${pod})"
cloudbox logs "${pod#pod/}"
ip=$(cloudbox get svc web -o json | sed -n 's/.*"clusterIP": "\([0-9.]*\)".*/\1/p')
log "the sample app through its Service (http://${ip}/)"
poll "an answer from the Service at http://${ip}/" fetch "http://${ip}/"

log "importing the guest as a VM image and booting a sample VM"
cloudbox image rm guest >/dev/null 2>&1 || true
step "the guest image's import" cloudbox image import --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" --cmdline "$(cat "$guest/cmdline")" --name guest
cloudbox vm delete demo --wait >/dev/null 2>&1 || true
printf '#cloud-config\n# hello from the cloudbox README\n' >"$DATA_DIR/demo-user-data"
step "the VM demo to be ACTIVE" cloudbox vm create demo --image guest --flavor m1.tiny --user-data "$DATA_DIR/demo-user-data" --wait --timeout "$TIMEOUT"
guest_ready() { cloudbox vm console-log demo 2>/dev/null | grep -q 'cloudbox-guest: ready'; }
poll "the VM's guest to print 'cloudbox-guest: ready' on its console" guest_ready
cloudbox vm list -o wide
log "the sample VM's console log (cloudbox vm console-log demo)"
cloudbox vm console-log demo
vmip=$(cloudbox get instance demo -o json | sed -n 's/.*"address": "\([0-9.]*\)".*/\1/p')
[ -n "$vmip" ] || give_up "the VM's address (status.address)"
log "the sample VM's web page (http://${vmip}/)"
poll "an answer from the VM at http://${vmip}/" fetch "http://${vmip}/"
cat <<MSG

cloudbox is running. Try:
  export CLOUDBOX_CONFIG=$DATA_DIR/admin.config
  cloudbox get nodes,pods -A         cloudbox describe deploy web
  cloudbox get svc web               cloudbox exec ${pod#pod/} -- wget -qO- http://web/
  cloudbox vm list                   cloudbox vm console demo      (Ctrl-] detaches)
  cloudbox vm stop demo              cloudbox volume create data --size 1 && cloudbox volume attach data demo
  cloudbox server --cleanup --data-dir $DATA_DIR    # stop it and remove its state
MSG
