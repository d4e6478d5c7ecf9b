#!/usr/bin/env bash
# Prints "<image> <archive>": the test node's pod sandbox ("pause") image, a docker archive for
# `ctr images import`. No registry is reachable, so registry.k8s.io/pause cannot be pulled: the
# image holds one static binary compiled from e2e/node/pause/pause.c. Built once per machine into
# ${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools/pause-<hash of the source and this script>/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC="$HERE/../../e2e/node/pause/pause.c"
CACHE="${ZEROFS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools}"
KEY=$(cat "$SRC" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
DEST="$CACHE/pause-$KEY"
IMAGE="localhost/zerofs-test-pause:$KEY"
mkdir -p "$CACHE"
exec 9>"$CACHE/.pause-image.lock"
flock 9
if [[ ! -f $DEST/pause.tar ]]; then
  bash "$HERE/ensure-apt.sh" gcc gcc podman podman
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/rootfs"
  gcc -static -Os -s -o "$work/rootfs/pause" "$SRC"
  tar --numeric-owner --owner=0 --group=0 -C "$work/rootfs" -cf "$work/rootfs.tar" .
  podman import --quiet --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' "$work/rootfs.tar" "$IMAGE" >/dev/null
  mkdir -p "$DEST"
  podman save --quiet --format docker-archive -o "$DEST/pause.tar.tmp" "$IMAGE"
  mv "$DEST/pause.tar.tmp" "$DEST/pause.tar"
fi
echo "$IMAGE $DEST/pause.tar"
