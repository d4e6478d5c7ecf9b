#!/usr/bin/env bash
# Prints "prometheus=<cache>/prometheus-<PROMETHEUS_VERSION>" for the directory holding the
# prometheus and promtool binaries the chart's monitoring tests use (test/monitoring/), building
# them from the Go module proxy once per machine. Same cache and locking convention as
# k8s-tools.sh: one flock per directory, binaries built to .tmp then renamed, so concurrent
# callers never build twice and never see half a binary.
#
# PROMETHEUS_VERSION is the Go module version of github.com/prometheus/prometheus (v0.316.0 is
# Prometheus 3.16.0: the module's tags are v0.3XX.Y for release 3.XX.Y). Its go.mod has no
# replace directives, so a plain `go install pkg@version` works.
# Build tags:
#   remove_all_sd  leaves out the cloud service-discovery plugins (AWS, Azure, GCE, ...), which
#                  the tests never use and which are most of the build; promtool still links the
#                  kubernetes and file SD it imports directly.
#   netgo          pure-Go resolver, as the release builds.
#   (no builtinassets) the web UI's assets are then read from disk at run time instead of being
#                  embedded, so no npm build of the UI is needed; the tests use only the HTTP API.
# Cold build time on this 2-core machine is in test/monitoring/README.md.
# Usage: prometheus-tools.sh   Env: PROMETHEUS_VERSION GO_BUILD_P ZEROFS_TOOL_CACHE
set -euo pipefail
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
CACHE="${ZEROFS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"   # v0.316.0 needs go >= 1.26.7
P="${GO_BUILD_P:-2}"
log() { echo "prometheus-tools.sh: $*" >&2; }

build_prometheus() {
  local dest="$CACHE/prometheus-$PROMETHEUS_VERSION" b missing=()
  for b in prometheus promtool; do [[ -x "$dest/$b" ]] || missing+=("$b"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  command -v go >/dev/null || { log "Go toolchain not found (needed to build prometheus $PROMETHEUS_VERSION)"; exit 1; }
  mkdir -p "$dest"; exec 8>"$dest/.build.lock"; flock 8
  missing=(); for b in prometheus promtool; do [[ -x "$dest/$b" ]] || missing+=("$b"); done
  local m=github.com/prometheus/prometheus c=github.com/prometheus/common/version
  # The release version (3.16.0 for v0.316.0) for `--version` and prometheus_build_info.
  local rel="3.$(( 10#$(echo "$PROMETHEUS_VERSION" | cut -d. -f2) - 300 )).$(echo "$PROMETHEUS_VERSION" | cut -d. -f3)"
  local ldf="-s -w -X $c.Version=$rel -X $c.Revision=module-proxy-$PROMETHEUS_VERSION -X $c.Branch=HEAD"
  ldf+=" -X $c.BuildUser=zerofs-tools -X $c.BuildDate=19700101-00:00:00"
  [[ ${#missing[@]} -eq 0 ]] && { exec 8>&-; return 0; } # built while we waited for the lock
  local tmp t0=$SECONDS pkgs=()
  tmp=$(mktemp -d)
  for b in "${missing[@]}"; do pkgs+=("$m/cmd/$b@$PROMETHEUS_VERSION"); done
  log "building ${missing[*]} $PROMETHEUS_VERSION (cold: several minutes on 2 cores)"
  # One go install for both: their shared packages compile once. It ignores enclosing
  # modules; run it from outside any anyway.
  (cd "$tmp" && GOFLAGS= CGO_ENABLED=0 GOBIN="$tmp" nice -n 5 go install -p "$P" -trimpath \
    -tags "netgo remove_all_sd" -ldflags "$ldf" "${pkgs[@]}")
  for b in "${missing[@]}"; do mv "$tmp/$b" "$dest/$b.tmp" && mv "$dest/$b.tmp" "$dest/$b"; done
  rm -rf "$tmp"
  log "built ${missing[*]} in $((SECONDS - t0))s"
  exec 8>&-
}

mkdir -p "$CACHE"
build_prometheus
echo "prometheus=$CACHE/prometheus-$PROMETHEUS_VERSION"
