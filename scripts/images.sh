#!/usr/bin/env bash
# `make images`: builds the server and operator images from operator/docker/*.Dockerfile with
# podman (Debian's podman/buildah), on a local Node base image (scripts/tools/node-base-image.sh:
# no container registry is needed), and exports each as a docker archive for
# `ctr -n k8s.io images import` (or `podman load`, `docker load`):
#   dist/images/zerofs-<tag>.tar            docker.io/zerofs/zerofs:<tag>
#   dist/images/zerofs-operator-<tag>.tar   docker.io/zerofs/zerofs-operator:<tag>
# <tag> defaults to the chart's appVersion (the tag the chart deploys); IMAGE_TAG overrides it.
# NODE_IMAGE overrides the base (e.g. the public node:24.21.0-bookworm-slim where a registry is
# reachable). Prints "<name> <archive>" per image on stdout.
#
# Builds run with `--isolation chroot` (no OCI runtime: on hosts with a hybrid cgroup layout crun
# refuses to start containers) and `--network host` (the deps stage runs `npm ci`, which needs
# the npm registry). The host's CA bundle and a global npmrc naming it are mounted into the build's
# RUN steps only (not into the images), so npm trusts what the host trusts (e.g. a proxy's CA).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
log() { echo "images.sh: $*" >&2; }
# runc: the tests run the images with `podman --runtime runc` (see e2e/node/images.ts).
bash scripts/tools/ensure-apt.sh podman podman buildah buildah runc runc
TAG=${IMAGE_TAG:-$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' charts/zerofs-operator/Chart.yaml)}
[[ -n $TAG ]] || { log "cannot read appVersion from charts/zerofs-operator/Chart.yaml"; exit 1; }
BASE=${NODE_IMAGE:-$(bash scripts/tools/node-base-image.sh)}
OUT=${IMAGES_DIR:-$REPO/dist/images}
mkdir -p "$OUT"
# One build at a time per output folder (make test may run one in the background while a test
# asks for the images): the second waits, then finds podman's layer cache warm.
exec 9>"$OUT/.images.lock"
flock 9
trust=()
CA=/etc/ssl/certs/ca-certificates.crt
if [[ -f $CA ]]; then
  npmrc=$(mktemp); trap 'rm -f "$npmrc"' EXIT
  printf 'cafile=%s\nupdate-notifier=false\n' "$CA" > "$npmrc"
  trust=(-v "$CA:$CA:ro" -v "$npmrc:/usr/local/etc/npmrc:ro")
fi

build() {  # build <dockerfile> <image> <archive>
  local t0=$SECONDS
  log "building $2 from $1 on $BASE"
  podman build --quiet --isolation chroot --network host --pull=never \
    "${trust[@]}" --build-arg "NODE_IMAGE=$BASE" -f "$1" -t "$2" . >/dev/null
  rm -f "$3.tmp"
  podman save --quiet --format docker-archive -o "$3.tmp" "$2"
  mv "$3.tmp" "$3"
  log "built $2 in $((SECONDS - t0))s: $(podman image inspect --format '{{.Size}}' "$2" | awk '{printf "%.0f MB", $1/1e6}'), archive $(du -h "$3" | cut -f1)"
  echo "$2 $3"
}
# Fully qualified (podman would otherwise say localhost/zerofs/...): the chart's "zerofs/zerofs"
# is docker.io/zerofs/zerofs to the kubelet and containerd.
build operator/docker/server.Dockerfile "docker.io/zerofs/zerofs:$TAG" "$OUT/zerofs-$TAG.tar"
build operator/docker/operator.Dockerfile "docker.io/zerofs/zerofs-operator:$TAG" "$OUT/zerofs-operator-$TAG.tar"
