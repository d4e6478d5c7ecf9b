#!/usr/bin/env bash
# Prints the path of a versitygw binary (Apache-2.0 S3 server with conditional writes),
# building it from the Go module proxy once per machine into a cache keyed by version.
set -euo pipefail
VERSION="${VERSITYGW_VERSION:-v1.8.0}"
CACHE="${ZEROFS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools}"
DEST="$CACHE/versitygw-$VERSION"
BIN="$DEST/versitygw"
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi
command -v go >/dev/null || { echo "versitygw.sh: Go toolchain not found (needed to build versitygw $VERSION)" >&2; exit 1; }
mkdir -p "$DEST"
LOCK="$DEST/.build.lock"
exec 9>"$LOCK"
flock 9
if [[ ! -x "$BIN" ]]; then
  echo "versitygw.sh: building versitygw $VERSION (one-time, ~3 min)" >&2
  TMP="$(mktemp -d)"
  GOBIN="$TMP" CGO_ENABLED=0 go install "github.com/versity/versitygw/cmd/versitygw@$VERSION" >&2
  mv "$TMP/versitygw" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  rm -rf "$TMP"
fi
echo "$BIN"
