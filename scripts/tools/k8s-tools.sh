#!/usr/bin/env bash
# Prints three lines "<name>=<dir>" for the directories holding the binaries of the local test
# control plane, building whatever is missing from the Go module proxy (once per machine):
#   k8s=<cache>/k8s-<K8S_VERSION>     kube-apiserver kube-controller-manager kubectl
#   etcd=<cache>/etcd-<ETCD_VERSION>  etcd
#   helm=<cache>/helm-<HELM_VERSION>  helm
# Same cache convention as versitygw.sh. Each directory is built under an flock so concurrent
# test runs never build twice; binaries appear atomically (build to .tmp, then mv).
# Cold build ≈ 1,040 CPU-seconds (kube-apiserver ≈ 610), peak ≈ 2.7 GB RSS, ≈ 5 GiB Go build
# cache; warm (Go build cache present) ≈ 40 s.
#
# Why wrapper modules: `go install k8s.io/kubernetes/cmd/...@v1.37.2` is refused because
# k8s.io/kubernetes' go.mod replaces its staging modules with local paths (./staging/...);
# etcd's server module does the same with ../api etc. A wrapper module pins each of those to its
# published tag instead. Helm has no replaces and takes a plain `go install`.
# Usage: k8s-tools.sh [--quiet]   Env: K8S_VERSION ETCD_VERSION HELM_VERSION GO_BUILD_P
set -euo pipefail
K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE="${ZEROFS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"   # all three need only go >= 1.26.0
export GOFLAGS="${GOFLAGS:-} -mod=mod"
P="${GO_BUILD_P:-2}"
log() { echo "k8s-tools.sh: $*" >&2; }
need_go() { command -v go >/dev/null || { log "Go toolchain not found (needed to build $1)"; exit 1; }; }
gomod_of() {  # gomod_of <module@version> -> path of its go.mod in the module cache
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p'
}

build_k8s() {
  local dest="$CACHE/k8s-$K8S_VERSION" b missing=()
  for b in kube-apiserver kube-controller-manager kubectl; do [[ -x "$dest/$b" ]] || missing+=("$b"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  need_go "kubernetes $K8S_VERSION"
  mkdir -p "$dest"; exec 8>"$dest/.build.lock"; flock 8
  local wrap="$dest/.wrapper" staging="v0.${K8S_VERSION#v1.}"
  if [[ ! -f "$wrap/go.sum" ]]; then
    log "generating wrapper module for k8s.io/kubernetes $K8S_VERSION"
    mkdir -p "$wrap"
    local gm; gm=$(gomod_of "k8s.io/kubernetes@$K8S_VERSION")
    [[ -s "$gm" ]] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
    # Replace only the staging modules k8s.io/kubernetes requires (as v0.0.0); the replace block
    # also names sample-* modules that are neither required nor served by every proxy.
    local required staged m
    required=$(grep -E '^[[:space:]]+k8s\.io/[A-Za-z0-9._-]+ v0\.0\.0([[:space:]]|$)' "$gm" | awk '{print $1}' | sort -u)
    staged=$(grep -E '^[[:space:]]*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$gm" | awk '{print $1}' | sort -u)
    {
      echo "module k8s-tools-wrapper"; echo
      grep -m1 -E '^go [0-9]' "$gm"; echo
      grep -E '^godebug ' "$gm" || true; echo
      echo "require k8s.io/kubernetes $K8S_VERSION"; echo
      echo "tool ("
      echo "	k8s.io/kubernetes/cmd/kube-apiserver"
      echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
      echo "	k8s.io/kubernetes/cmd/kubectl"
      echo ")"; echo
      echo "replace ("
      for m in $staged; do grep -qx "$m" <<<"$required" && echo "	$m => $m $staging"; done
      echo ")"
    } > "$wrap/go.mod"
    # A cold first tidy was once seen to write the tool lines twice; a second one normalises it.
    (cd "$wrap" && go mod tidy && go mod tidy)
  fi
  local minor ldf pkg
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  ldf="-s -w"
  # kubectl version / helm lint read these; without them the binaries report v0.0.0.
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldf+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldf+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in "${missing[@]}"; do
    [[ -x "$dest/$b" ]] && continue
    log "building $b $K8S_VERSION (cold: kube-apiserver ≈ 10 min on 2 cores)"
    local t0=$SECONDS
    (cd "$wrap" && CGO_ENABLED=0 nice -n 5 go build -p "$P" -trimpath -ldflags "$ldf" \
      -o "$dest/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$dest/$b.tmp" "$dest/$b"
    log "built $b in $((SECONDS - t0))s"
  done
  exec 8>&-
}

build_etcd() {
  local dest="$CACHE/etcd-$ETCD_VERSION"
  [[ -x "$dest/etcd" ]] && return 0
  need_go "etcd $ETCD_VERSION"
  mkdir -p "$dest"; exec 8>"$dest/.build.lock"; flock 8
  if [[ ! -x "$dest/etcd" ]]; then
    local wrap="$dest/.wrapper" gm siblings m
    mkdir -p "$wrap"
    gm=$(gomod_of "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
    [[ -s "$gm" ]] || { log "could not download go.etcd.io/etcd/server/v3@$ETCD_VERSION"; exit 1; }
    siblings=$(grep -E '^[[:space:]]*go\.etcd\.io/[^ ]+ => \.\./' "$gm" | awk '{print $1}' | sort -u)
    {
      echo "module etcd-wrapper"; echo
      grep -m1 -E '^go [0-9]' "$gm"; echo
      echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"; echo
      echo "tool go.etcd.io/etcd/server/v3"; echo
      echo "replace ("
      for m in $siblings; do echo "	$m => $m $ETCD_VERSION"; done
      echo ")"
    } > "$wrap/go.mod"
    log "building etcd $ETCD_VERSION"
    local t0=$SECONDS
    (cd "$wrap" && go mod tidy && CGO_ENABLED=0 nice -n 5 go build -p "$P" -trimpath -ldflags "-s -w" \
      -o "$dest/etcd.tmp" go.etcd.io/etcd/server/v3)
    mv "$dest/etcd.tmp" "$dest/etcd"
    log "built etcd in $((SECONDS - t0))s"
  fi
  exec 8>&-
}

build_helm() {
  local dest="$CACHE/helm-$HELM_VERSION"
  [[ -x "$dest/helm" ]] && return 0
  need_go "helm $HELM_VERSION"
  mkdir -p "$dest"; exec 8>"$dest/.build.lock"; flock 8
  if [[ ! -x "$dest/helm" ]]; then
    local gm cg kmaj kmin p=helm.sh/helm/v3 ldf tmp
    gm=$(gomod_of "$p@$HELM_VERSION")
    # helm lint/template's default Kubernetes version comes from its client-go (v0.37 -> 1.37).
    cg=$(awk '$1=="k8s.io/client-go"{print $2}' "$gm")
    kmaj=$(( $(echo "${cg#v}" | cut -d. -f1) + 1 )); kmin=$(echo "$cg" | cut -d. -f2)
    ldf="-s -w -X $p/internal/version.version=$HELM_VERSION -X $p/internal/version.gitTreeState=clean"
    ldf+=" -X $p/pkg/lint/rules.k8sVersionMajor=$kmaj -X $p/pkg/lint/rules.k8sVersionMinor=$kmin"
    ldf+=" -X $p/pkg/chartutil.k8sVersionMajor=$kmaj -X $p/pkg/chartutil.k8sVersionMinor=$kmin"
    log "building helm $HELM_VERSION"
    local t0=$SECONDS
    tmp=$(mktemp -d)
    # go install pkg@version ignores enclosing modules; run it from outside any anyway.
    (cd "$tmp" && GOFLAGS= CGO_ENABLED=0 GOBIN="$tmp" nice -n 5 go install -p "$P" -trimpath -ldflags "$ldf" "$p/cmd/helm@$HELM_VERSION")
    mv "$tmp/helm" "$dest/helm.tmp" && mv "$dest/helm.tmp" "$dest/helm"
    rm -rf "$tmp"
    log "built helm in $((SECONDS - t0))s"
  fi
  exec 8>&-
}

build_etcd
build_helm
build_k8s
echo "k8s=$CACHE/k8s-$K8S_VERSION"
echo "etcd=$CACHE/etcd-$ETCD_VERSION"
echo "helm=$CACHE/helm-$HELM_VERSION"
