#!/usr/bin/env bash
# Runs the README's first command, scripts/up.sh, end to end on a fresh data dir, as
# a new user would, then uninstalls with `server --cleanup` and checks that nothing
# is left: no process, bridge, CLOUDBOX chain, mount or cgroup. Its own loopback
# port, bridge, CIDRs and cgroup parent keep it apart from the test suite.
# Run as root on Debian: bash scripts/up-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

data=$(mktemp -d /tmp/cloudbox-up.XXXXXX)
bin="$data.bin"
tag=$(basename "$data" | tr -dc 'a-z0-9' | tail -c 6)
bridge="cbxup$tag"
bridge=${bridge:0:15}
cgroup="/cloudbox-up-$tag"

# free_port picks a loopback port nothing listens on.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
  echo "no free port found" >&2
  return 1
}

# free_net picks a 10.X.0.0/16 that no address or route on the host falls in, and
# that is neither default CIDR (10.244 for pods, 10.96 for services).
free_net() {
  local x
  for _ in $(seq 1 50); do
    x=$((100 + RANDOM % 140))
    { ip -4 addr; ip -4 route; } | grep -q " 10\.$x\." || { echo "$x"; return; }
  done
  echo "no free 10.X.0.0/16 found" >&2
  return 1
}

port=$(free_port)
cnet=$(free_net)
snet=$(free_net)
while [ "$snet" = "$cnet" ]; do snet=$(free_net); done

failed=0
fail() { echo "up-check: $*" >&2; failed=1; }

log "scripts/up.sh on $data (127.0.0.1:$port, bridge $bridge, pods 10.$cnet.0.0/16, services 10.$snet.0.0/16)"
set +e
CLOUDBOX_DATA_DIR=$data CLOUDBOX_LISTEN=127.0.0.1:$port CLOUDBOX_BRIDGE=$bridge \
  CLOUDBOX_CLUSTER_CIDR=10.$cnet.0.0/16 CLOUDBOX_SERVICE_CIDR=10.$snet.0.0/16 \
  CLOUDBOX_CGROUP_PARENT=$cgroup CLOUDBOX_BIN_DIR=$bin \
  bash scripts/up.sh 2>&1 | tee "$data.out"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || fail "scripts/up.sh exited $status"
grep -q 'hello from cloudbox' "$data.out" || fail "up.sh did not print the sample page from the Service ('hello from cloudbox')"
grep -q 'hello from demo' "$data.out" || fail "up.sh did not print the sample page from the VM ('hello from demo')"

log "cloudbox server --cleanup --data-dir $data"
"$bin/cloudbox" server --cleanup --data-dir "$data" --cgroup-parent "$cgroup" || fail "server --cleanup failed"

[ ! -e "$data" ] || fail "the data dir $data is still there"
for p in /proc/[0-9]*; do
  if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$data"; then
    fail "process ${p#/proc/} is left: $(tr '\0' ' ' <"$p/cmdline")"
  fi
done
! ip link show "$bridge" >/dev/null 2>&1 || fail "the bridge $bridge is left"
for table in filter nat; do
  chains=$(iptables-save -t "$table" | grep -oE '^:CLOUDBOX[A-Z0-9-]*' || true)
  [ -z "$chains" ] || fail "CLOUDBOX chains are left in the $table table: $(echo $chains)"
  ! iptables-save -t "$table" | grep -qE -- "$bridge|10\.$cnet\.|10\.$snet\." || fail "iptables rules for $bridge or its CIDRs are left in the $table table"
done
! grep -qF -- "$data" /proc/self/mountinfo || fail "mounts under $data are left: $(grep -F -- "$data" /proc/self/mountinfo | awk '{print $5}')"
for c in /sys/fs/cgroup/*"$cgroup" /sys/fs/cgroup"$cgroup"; do
  [ ! -d "$c" ] || fail "the cgroup $c is left"
done

rm -rf "$bin" "$data.out"
if [ "$failed" -ne 0 ]; then
  exit 1
fi
log "up.sh printed both sample pages and server --cleanup left nothing behind"
