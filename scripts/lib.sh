# Shared helpers for cloudbox's scripts: installing what the project needs from
# Debian and making sure a recent enough Go is on PATH. Sourced, not run.

GO_WANT=1.26.8   # the toolchain go.mod needs; fetched through the Go module proxy if absent

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# apt_install installs Debian packages that are missing, running apt-get update once.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  if [ -z "${CLOUDBOX_APT_UPDATED:-}" ]; then
    apt-get update -qq
    export CLOUDBOX_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# go_ok reports whether the go on PATH is at least GO_WANT.
go_ok() {
  command -v go >/dev/null 2>&1 || return 1
  local have
  have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
  [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$GO_WANT" "$have" | sort -V | head -n1)" = "$GO_WANT" ]
}

# ensure_go puts a Go >= GO_WANT on PATH: the one in /usr/local/go if it is recent
# enough, else Debian's Go is installed and used only to download the official
# toolchain module through the Go module proxy (no other download site is needed).
ensure_go() {
  export PATH="$PATH:/root/go/bin"
  go_ok && return 0
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
    go_ok && return 0
  fi
  local tc="golang.org/toolchain@v0.0.1-go${GO_WANT}.linux-amd64"
  local dir
  dir="$(go env GOMODCACHE 2>/dev/null || echo /root/go/pkg/mod)/golang.org/toolchain@v0.0.1-go${GO_WANT}.linux-amd64"
  if [ ! -x "$dir/bin/go" ]; then
    apt_install golang-go ca-certificates
    log "fetching Go ${GO_WANT} through the module proxy"
    (cd /tmp && GO111MODULE=on GOFLAGS=-mod=mod GOTOOLCHAIN=local /usr/bin/go mod download "$tc")
    dir="$(/usr/bin/go env GOMODCACHE)/golang.org/toolchain@v0.0.1-go${GO_WANT}.linux-amd64"
    chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/* 2>/dev/null || true
  fi
  export PATH="$dir/bin:$PATH" GOROOT="$dir"
  go_ok || { echo "could not get Go ${GO_WANT}" >&2; exit 1; }
}

# deps installs what building and testing cloudbox needs from Debian.
deps() {
  apt_install ca-certificates git gcc libc6-dev make iproute2 procps curl iptables busybox-static docker-registry skopeo qemu-system-x86 qemu-utils syslinux syslinux-common mtools dosfstools cpio xz-utils gzip
  ensure_go
}

# build writes bin/cloudbox: one static binary, version and commit stamped in.
build() {
  local version commit
  version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  log "building bin/cloudbox ($version)"
  CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
    -ldflags "-s -w -extldflags -static -X github.com/cloudbox/cloudbox/cli.Version=$version -X github.com/cloudbox/cloudbox/cli.Commit=$commit" \
    -o bin/cloudbox .
}
