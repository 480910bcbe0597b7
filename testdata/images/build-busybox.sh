#!/usr/bin/env bash
# Builds a busybox OCI image offline from Debian's busybox-static, as an OCI layout
# directory and a `docker save`-style tarball. Nothing is downloaded but the Debian
# package; nothing it writes is committed.
#
#   testdata/images/build-busybox.sh OUT_DIR [TAG]
#   -> OUT_DIR/oci (OCI layout, ref TAG) and OUT_DIR/busybox.tar (docker-archive)
set -euo pipefail
out=${1:?usage: build-busybox.sh OUT_DIR [TAG]}
tag=${2:-1.36}
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || { echo "install busybox-static" >&2; exit 1; }
command -v skopeo >/dev/null 2>&1 || { echo "install skopeo" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The root filesystem: the static busybox and a link for each applet it has.
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,root,var/www} && chmod 1777 "$root/tmp"
echo "hello from cloudbox" >"$root/var/www/index.html"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

# One layer, deterministic: fixed mtimes and owners, sorted entries.
layer=$work/layer.tar
tar --sort=name --mtime='2024-01-01 00:00Z' --owner=0 --group=0 --numeric-owner -C "$root" -cf "$layer" .
diffid=$(sha256sum "$layer" | cut -d' ' -f1)
gzip -n -9 <"$layer" >"$layer.gz"
layer_digest=$(sha256sum "$layer.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$layer.gz")

oci=$out/oci
rm -rf "$oci" && mkdir -p "$oci/blobs/sha256"
cp "$layer.gz" "$oci/blobs/sha256/$layer_digest"
cat >"$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$diffid"]},"history":[{"created":"2024-01-01T00:00:00Z","created_by":"testdata/images/build-busybox.sh"}]}
JSON
config_digest=$(sha256sum "$work/config.json" | cut -d' ' -f1)
cp "$work/config.json" "$oci/blobs/sha256/$config_digest"
cat >"$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_digest","size":$(stat -c %s "$work/config.json")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$layer_digest","size":$layer_size}]}
JSON
manifest_digest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
cp "$work/manifest.json" "$oci/blobs/sha256/$manifest_digest"
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
cat >"$oci/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_digest","size":$(stat -c %s "$work/manifest.json"),"annotations":{"org.opencontainers.image.ref.name":"$tag"}}]}
JSON

rm -f "$out/busybox.tar"
skopeo --insecure-policy copy -q "oci:$oci:$tag" "docker-archive:$out/busybox.tar:busybox:$tag"
echo "built $oci (busybox:$tag) and $out/busybox.tar"
