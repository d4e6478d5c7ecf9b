#!/usr/bin/env bash
# Prints "<name>=<dir>" lines for the binaries of a Kubernetes node (run inside the test VM,
# e2e/node/), building whatever is missing from the Go module proxy, once per machine:
#   kubenode=<cache>/kubenode-<K8S_VERSION>        kubelet kube-proxy kube-scheduler (the last runs
#                                                  on the host, next to the control plane)
#   containerd=<cache>/containerd-<CONTAINERD_VERSION>  containerd containerd-shim-runc-v2 ctr
#   runc=<cache>/runc-<RUNC_VERSION>               runc (static, with seccomp)
#   cni=<cache>/cni-<CNI_VERSION>                  bridge host-local loopback portmap
# Same cache and locking convention as k8s-tools.sh: one flock per directory, binaries built to
# .tmp then renamed, so concurrent callers never build twice and never see half a binary.
#
# Only what a node needs is built (no ctr plugins, no other CNI plugins). Build times measured
# on this 2-core machine are in e2e/node/README.md.
#
# runc needs cgo (its nsenter is C) and is built with the "seccomp" tag against Debian's
# libseccomp-dev, linked statically: the operator's server pods ask for seccompProfile
# RuntimeDefault, which a runc without seccomp refuses. The "libpathrs" tag of runc's Makefile
# is left out (it needs a Rust library Debian 12 does not package; runc then uses its Go code).
# Usage: node-tools.sh   Env: K8S_VERSION CONTAINERD_VERSION RUNC_VERSION CNI_VERSION GO_BUILD_P
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION="${K8S_VERSION:-v1.37.2}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
RUNC_VERSION="${RUNC_VERSION:-v1.5.3}"
CNI_VERSION="${CNI_VERSION:-v1.10.0}"
CACHE="${ZEROFS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
P="${GO_BUILD_P:-2}"
log() { echo "node-tools.sh: $*" >&2; }
need_go() { command -v go >/dev/null || { log "Go toolchain not found (needed to build $1)"; exit 1; }; }
gomod_of() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p'
}
# go_install <dest> <name> <package@version> [go flags...]: one binary, atomically into dest.
go_install() {
  local dest=$1 name=$2 pkg=$3; shift 3
  [[ -x "$dest/$name" ]] && return 0
  local tmp t0=$SECONDS
  tmp=$(mktemp -d)
  log "building $name ($pkg)"
  (cd "$tmp" && GOFLAGS= GOBIN="$tmp" nice -n 5 go install -p "$P" -trimpath "$@" "$pkg")
  mv "$tmp/$(basename "${pkg%@*}")" "$dest/$name.tmp" && mv "$dest/$name.tmp" "$dest/$name"
  rm -rf "$tmp"
  log "built $name in $((SECONDS - t0))s"
}

build_kubenode() {
  local dest="$CACHE/kubenode-$K8S_VERSION" b missing=()
  for b in kubelet kube-proxy kube-scheduler; do [[ -x "$dest/$b" ]] || missing+=("$b"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  need_go "kubernetes $K8S_VERSION"
  mkdir -p "$dest"; exec 8>"$dest/.build.lock"; flock 8
  # The same wrapper module as k8s-tools.sh (see there why), with the node's two commands.
  local wrap="$dest/.wrapper" staging="v0.${K8S_VERSION#v1.}"
  if [[ ! -f "$wrap/go.sum" ]]; then
    log "generating wrapper module for k8s.io/kubernetes $K8S_VERSION"
    mkdir -p "$wrap"
    local gm required staged m
    gm=$(gomod_of "k8s.io/kubernetes@$K8S_VERSION")
    [[ -s "$gm" ]] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
    required=$(grep -E '^[[:space:]]+k8s\.io/[A-Za-z0-9._-]+ v0\.0\.0([[:space:]]|$)' "$gm" | awk '{print $1}' | sort -u)
    staged=$(grep -E '^[[:space:]]*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$gm" | awk '{print $1}' | sort -u)
    {
      echo "module kubenode-wrapper"; echo
      grep -m1 -E '^go [0-9]' "$gm"; echo
      grep -E '^godebug ' "$gm" || true; echo
      echo "require k8s.io/kubernetes $K8S_VERSION"; echo
      echo "tool ("
      echo "	k8s.io/kubernetes/cmd/kubelet"
      echo "	k8s.io/kubernetes/cmd/kube-proxy"
      echo "	k8s.io/kubernetes/cmd/kube-scheduler"
      echo ")"; echo
      echo "replace ("
      for m in $staged; do grep -qx "$m" <<<"$required" && echo "	$m => $m $staging"; done
      echo ")"
    } > "$wrap/go.mod"
    (cd "$wrap" && GOFLAGS=-mod=mod go mod tidy && GOFLAGS=-mod=mod go mod tidy)
  fi
  local minor ldf pkg
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  ldf="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldf+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldf+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in "${missing[@]}"; do
    [[ -x "$dest/$b" ]] && continue
    log "building $b $K8S_VERSION"
    local t0=$SECONDS
    (cd "$wrap" && GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 5 go build -p "$P" -trimpath -ldflags "$ldf" \
      -o "$dest/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$dest/$b.tmp" "$dest/$b"
    log "built $b in $((SECONDS - t0))s"
  done
  exec 8>&-
}

build_containerd() {
  local dest="$CACHE/containerd-$CONTAINERD_VERSION" v=${CONTAINERD_VERSION}
  [[ -x "$dest/containerd" && -x "$dest/containerd-shim-runc-v2" && -x "$dest/ctr" ]] && return 0
  need_go "containerd $v"
  mkdir -p "$dest"; exec 8>"$dest/.build.lock"; flock 8
  local m=github.com/containerd/containerd/v2
  # kubelet reads the runtime's version over CRI; without -X containerd says "2.x+unknown".
  local ldf="-s -w -X $m/version.Version=$v -X $m/version.Revision=module-proxy"
  # No btrfs (cgo) snapshotter; overlayfs is what the node uses.
  local tags="no_btrfs no_devmapper no_zfs"
  CGO_ENABLED=0 go_install "$dest" containerd "$m/cmd/containerd@$v" -tags "$tags" -ldflags "$ldf"
  CGO_ENABLED=0 go_install "$dest" containerd-shim-runc-v2 "$m/cmd/containerd-shim-runc-v2@$v" -ldflags "$ldf"
  CGO_ENABLED=0 go_install "$dest" ctr "$m/cmd/ctr@$v" -tags "$tags" -ldflags "$ldf"
  exec 8>&-
}

build_runc() {
  local dest="$CACHE/runc-$RUNC_VERSION"
  [[ -x "$dest/runc" ]] && return 0
  need_go "runc $RUNC_VERSION"
  # Static libseccomp (libseccomp.a) and a C compiler for the cgo parts.
  bash "$HERE/ensure-apt.sh" gcc gcc pkg-config pkg-config /usr/lib/x86_64-linux-gnu/libseccomp.a libseccomp-dev
  mkdir -p "$dest"; exec 8>"$dest/.build.lock"; flock 8
  local ldf="-s -w -X main.version=${RUNC_VERSION#v} -X main.gitCommit=module-proxy -extldflags -static"
  CGO_ENABLED=1 go_install "$dest" runc "github.com/opencontainers/runc@$RUNC_VERSION" \
    -tags "seccomp urfave_cli_no_docs netgo osusergo" -ldflags "$ldf"
  exec 8>&-
}

build_cni() {
  local dest="$CACHE/cni-$CNI_VERSION" p
  local plugins="main/bridge ipam/host-local main/loopback meta/portmap"
  local all=1
  for p in $plugins; do [[ -x "$dest/$(basename "$p")" ]] || all=0; done
  [[ $all == 1 ]] && return 0
  need_go "CNI plugins $CNI_VERSION"
  mkdir -p "$dest"; exec 8>"$dest/.build.lock"; flock 8
  for p in $plugins; do
    CGO_ENABLED=0 go_install "$dest" "$(basename "$p")" "github.com/containernetworking/plugins/plugins/$p@$CNI_VERSION" \
      -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_VERSION"
  done
  exec 8>&-
}

mkdir -p "$CACHE"
build_cni
build_runc
build_containerd
build_kubenode
echo "kubenode=$CACHE/kubenode-$K8S_VERSION"
echo "containerd=$CACHE/containerd-$CONTAINERD_VERSION"
echo "runc=$CACHE/runc-$RUNC_VERSION"
echo "cni=$CACHE/cni-$CNI_VERSION"
