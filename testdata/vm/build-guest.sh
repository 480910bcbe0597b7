#!/bin/bash
# build-guest.sh [CACHE_DIR] builds the small Linux guest the VM tests boot: Debian's
# cloud kernel (extracted from its package, never installed on the host) and a busybox
# initramfs whose init reads the cloud-init NoCloud seed and reports what it did on the
# serial console. It also makes disk.qcow2, a syslinux-bootable FAT disk with the same
# kernel and initramfs, for tests that boot from a disk image.
#
# Outputs, in CACHE_DIR/<kernel version>-<script hash>/ (printed as the last line):
#   vmlinuz, initrd.img, disk.qcow2, cmdline (the default kernel command line).
# Nothing here needs the network except Debian's apt; nothing it makes is committed.
# Safe to run concurrently (flock) and again (a finished build is reused).
set -euo pipefail

cache=${1:-${CLOUDBOX_CACHE:-/var/cache/cloudbox}/guest}
script=$(readlink -f "${BASH_SOURCE[0]}")
hash=$(sha256sum "$script" | cut -c1-12)

die() { echo "build-guest: $*" >&2; exit 1; }
for tool in apt-cache apt-get dpkg-deb cpio gzip qemu-img syslinux mcopy mkfs.vfat; do
  command -v "$tool" >/dev/null || die "missing $tool (scripts/lib.sh deps installs it)"
done
busybox=/bin/busybox
[ -x "$busybox" ] || die "missing $busybox (Debian's busybox-static)"
"$busybox" --list >/dev/null || die "$busybox does not run"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

# The metapackage names the versioned kernel package; the kernel version is in its name.
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || die "cannot resolve linux-image-cloud-amd64 (apt-get update?)"
kver=${pkg#linux-image-}
out="$cache/$kver-$hash"
if [ -f "$out/cmdline" ]; then
  echo "$out"
  exit 0
fi

debs="$cache/debs"
mkdir -p "$debs"
deb=$(ls "$debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  # _apt cannot write into a root-owned cache dir; apt then downloads as root and warns.
  (cd "$debs" && apt-get download -q "$pkg" 2>&1 | grep -v 'Download is performed unsandboxed' >&2 || true)
  deb=$(ls "$debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
  [ -n "$deb" ] || die "apt-get download $pkg failed"
fi

work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/pkg"
moddir="$work/pkg/lib/modules/$kver"
cp "$work/pkg/boot/vmlinuz-$kver" "$work/vmlinuz"
# Debian 12 ships modules uncompressed; newer kernels ship .ko.xz, which busybox
# modprobe cannot load, so decompress them.
find "$moddir" -name '*.ko.xz' -exec xz -d {} +
# The package has no modules.dep (depmod runs at install); busybox depmod makes one.
"$busybox" depmod -b "$work/pkg" "$kver"

# Modules the guest loads: virtio devices, IDE/SCSI cdroms (a seed may come as either),
# the filesystems of a seed, and the ACPI power button with evdev for acpid.
modules="virtio_pci virtio_blk virtio_net virtio_console virtio_scsi ata_piix sd_mod sr_mod
  isofs vfat nls_cp437 nls_ascii nls_utf8 nls_iso8859-1 button evdev"
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,etc/acpi/PWRF,etc/acpi/PWRB,proc,sys,dev,tmp,run,root,var/www,var/log,mnt/seed,lib/modules/$kver}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list-full); do
  [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
done
declare -A want=()
resolve() {
  local name=$1 line path dep
  line=$(grep -E "(^|/)${name//_/[_-]}\.ko:" "$moddir/modules.dep" | head -1) || die "no module $name in $pkg"
  path=${line%%:*}
  [ -n "${want[$path]:-}" ] && return 0
  want[$path]=1
  for dep in ${line#*:}; do
    dep=$(basename "$dep" .ko)
    resolve "$dep"
  done
}
for m in $modules; do resolve "$m"; done
for path in "${!want[@]}"; do
  mkdir -p "$root/lib/modules/$kver/$(dirname "$path")"
  cp "$moddir/$path" "$root/lib/modules/$kver/$path"
done
"$busybox" depmod -b "$root" "$kver"
echo "$modules" | tr -s ' \n' '\n' | sed '/^$/d' >"$root/etc/modules"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF

cat >"$root/init" <<'EOF'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
exec </dev/console >/dev/console 2>&1
echo CLOUDBOX-GUEST-BOOTED
exec /sbin/init
EOF

cat >"$root/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
EOF

cat >"$root/etc/init.d/rcS" <<'EOF'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
say() { echo "cloudbox-guest: $*"; }
while read -r m; do modprobe "$m" || say "modprobe $m failed"; done </etc/modules
hostname cloudbox-guest

# The seed's cdrom or disk may still be probing (SCSI scans asynchronously).
seed=
i=0
while [ $i -lt 50 ]; do
  seed=$(findfs LABEL=cidata 2>/dev/null) && break
  seed=$(findfs LABEL=CIDATA 2>/dev/null) && break
  i=$((i + 1))
  usleep 100000
done
name=cloudbox-guest
if [ -n "$seed" ] && { mount -o ro -t iso9660 "$seed" /mnt/seed 2>/dev/null || mount -o ro -t vfat "$seed" /mnt/seed; }; then
  md=/mnt/seed/meta-data
  if [ -f $md ]; then
    n=$(sed -n 's/^local-hostname:[[:space:]]*//p' $md | tr -d "\"'\r" | head -1)
    [ -n "$n" ] && name=$n
    keys=$(awk '/^public-keys:/ {k=1; next} k && /^[[:space:]]*- / {c++; next} k && /^[^[:space:]]/ {k=0} END {print c+0}' $md)
  fi
  hostname "$name"
  echo "$name" >/etc/hostname
  say "hostname=$name"
  say "user-data begin"
  [ -f /mnt/seed/user-data ] && cat /mnt/seed/user-data
  say "user-data end"
  say "public-keys=${keys:-0}"
  nc=/mnt/seed/network-config
  if [ -f $nc ]; then
    # The subset of network-config v2 that cloudbox writes: one ethernet, matched by
    # MAC or named eth0, with addresses, a default route and nameservers.
    mac=$(sed -n 's/^[[:space:]]*macaddress:[[:space:]]*//p' $nc | tr -d "\"'" | head -1)
    cidr=$(awk '/^[[:space:]]*nameservers:/ {ns=1} /^[[:space:]]*addresses:/ && !ns {gsub(/.*\[|\].*|[" ]/, ""); split($0, a, ","); print a[1]; exit}' $nc)
    gw=$(sed -n -e 's/^[[:space:]]*gateway4:[[:space:]]*//p' -e 's/^[[:space:]]*via:[[:space:]]*//p' $nc | tr -d "\"'" | head -1)
    dns=$(awk '/^[[:space:]]*nameservers:/ {ns=1; next} ns && /addresses:/ {gsub(/.*\[|\].*|[" ]/, ""); gsub(/,/, " "); print; exit}' $nc)
    search=$(awk '/^[[:space:]]*nameservers:/ {ns=1; next} ns && /search:/ {gsub(/.*\[|\].*|[" ]/, ""); gsub(/,/, " "); print; exit}' $nc)
    dev=eth0
    if [ -n "$mac" ]; then
      for a in /sys/class/net/*/address; do
        [ "$(cat "$a")" = "$(echo "$mac" | tr A-F a-f)" ] && dev=$(basename "$(dirname "$a")")
      done
    fi
    ip link set lo up
    if [ ! -e "/sys/class/net/$dev" ]; then
      say "no network interface ${mac:-$dev}"
    elif ip link set "$dev" up && [ -n "$cidr" ] && ip addr add "$cidr" dev "$dev"; then
      say "address=$cidr"
      [ -n "$gw" ] && { ip route add default via "$gw" dev "$dev" || say "route via $gw failed"; }
    fi
    : >/etc/resolv.conf
    for s in $dns; do echo "nameserver $s" >>/etc/resolv.conf; done
    [ -n "$search" ] && echo "search $search" >>/etc/resolv.conf
  fi
else
  say "no seed"
  ip link set lo up
fi

echo "hello from $name" >/var/www/index.html
httpd -p 80 -h /var/www
# acpid runs /etc/acpi/<event> for the power button's input events (evdev); it
# exits at once, silently, if it cannot open its log file.
acpid -c /etc/acpi -l /var/log/acpid.log
setsid /etc/disk-watch &
say "ready"
EOF

cat >"$root/etc/acpi/poweroff.sh" <<'EOF'
#!/bin/sh
echo "cloudbox-guest: powering off" >/dev/console
poweroff
EOF
ln -s ../poweroff.sh "$root/etc/acpi/PWRF/00000080"
ln -s ../poweroff.sh "$root/etc/acpi/PWRB/00000080"

cat >"$root/etc/disk-watch" <<'EOF'
#!/bin/sh
# Hot-plugged virtio-blk disks show up in /sys/block; polling needs no hotplug helper.
disks() { for d in /sys/block/vd*; do [ -e "$d" ] && basename "$d"; done; }
old=$(disks)
for d in $old; do echo "cloudbox-guest: disk present $d" >/dev/console; done
while :; do
  usleep 250000
  new=$(disks)
  [ "$new" = "$old" ] && continue
  for d in $new; do echo " $old " | tr '\n' ' ' | grep -q " $d " || echo "cloudbox-guest: disk added $d" >/dev/console; done
  for d in $old; do echo " $new " | tr '\n' ' ' | grep -q " $d " || echo "cloudbox-guest: disk removed $d" >/dev/console; done
  old=$new
done
EOF
chmod 755 "$root/init" "$root/etc/init.d/rcS" "$root/etc/acpi/poweroff.sh" "$root/etc/disk-watch"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) | gzip -9n >"$work/initrd.img"

cmdline="console=ttyS0 panic=-1 quiet"
echo "$cmdline" >"$work/cmdline.tmp"

# A FAT "superfloppy" (no partition table) with syslinux in its boot sector: SeaBIOS
# boots it, and mtools writes it without loop mounts.
kb=$(( ($(stat -c %s "$work/vmlinuz") + $(stat -c %s "$work/initrd.img")) / 1024 + 4096 ))
mkfs.vfat -C -n CLOUDBOX "$work/disk.img" "$kb" >/dev/null
syslinux --install "$work/disk.img"
cat >"$work/syslinux.cfg" <<EOF
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND $cmdline
EOF
mcopy -i "$work/disk.img" "$work/vmlinuz" "$work/initrd.img" "$work/syslinux.cfg" ::/
qemu-img convert -O qcow2 "$work/disk.img" "$work/disk.qcow2"

mkdir "$work/out"
mv "$work/vmlinuz" "$work/initrd.img" "$work/disk.qcow2" "$work/out/"
mv "$work/cmdline.tmp" "$work/out/cmdline"
rm -rf "$out"
mv "$work/out" "$out"
echo "$out"
