#!/usr/bin/env bash
# `make run`: the zerofs server on the embedded default (a local directory), with defaults for
# what the command requires so that it works on a fresh clone. Every default can be overridden
# by the variable of the same name (see `zerofs --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
export SLATEDB_CACHE_DIR="${SLATEDB_CACHE_DIR:-./.cache/zerofs}"
export SLATEDB_CACHE_SIZE_GB="${SLATEDB_CACHE_SIZE_GB:-1}"
if [[ -z "${ZEROFS_ENCRYPTION_PASSWORD:-}" && -z "${ZEROFS_ENCRYPTION_PASSWORD_FILE:-}" ]]; then
  echo "make run: using the demo password; set ZEROFS_ENCRYPTION_PASSWORD for real data" >&2
  export ZEROFS_ENCRYPTION_PASSWORD=zerofs-demo-password
fi
# Loopback only and `secure` (reserved source ports): only root on this machine can act as
# root, so no_root_squash gives no one anything new and a fresh volume stays usable. Real
# deployments keep the server's default, root squash (README: Security defaults).
export ZEROFS_SQUASH="${ZEROFS_SQUASH:-none}"
DATA="${ZEROFS_DATA_DIR:-./data}"
echo "make run: serving $DATA on 127.0.0.1:${ZEROFS_NFS_PORT:-2049}; mount with" >&2
echo "  mount -t nfs -o vers=3,nolock,tcp,port=${ZEROFS_NFS_PORT:-2049},mountport=${ZEROFS_NFS_PORT:-2049} 127.0.0.1:/ /mnt" >&2
exec npm run --silent zerofs -- "$DATA"
