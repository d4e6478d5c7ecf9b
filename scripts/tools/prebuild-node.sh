#!/usr/bin/env bash
# Builds what the real-node suite (npm run test:node, e2e/node/) needs and that nothing else
# builds: the node's binaries (node-tools.sh, ≈ 9 min cold), the pause image and the server and
# operator images (scripts/images.sh). `make test` starts it in the background (--background)
# before the other suites, so the cold build overlaps them; it runs at the lowest CPU priority so
# the other suites' timings are disturbed as little as possible.
# Only an optimisation: every script it calls takes its own lock, and the suite calls the same
# scripts again (they then find the cache, or wait for the build holding the lock, or rebuild
# after a failure here). A second prebuild while one runs exits at once.
# Usage: prebuild-node.sh [--background]   Log: <tool cache>/prebuild-node.log
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE="${ZEROFS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools}"
mkdir -p "$CACHE"
LOG="$CACHE/prebuild-node.log"
if [[ ${1:-} == --background ]]; then
  # setsid: not in make's process group, so it does not hold make's output open; nohup: it
  # survives the terminal. Its output goes to the log only.
  setsid nohup nice -n 19 bash "$HERE/prebuild-node.sh" >"$LOG" 2>&1 < /dev/null &
  echo "prebuild-node.sh: building the node suite's tools and images in the background (log: $LOG)" >&2
  exit 0
fi
exec 8>"$CACHE/.prebuild-node.lock"
flock -n 8 || { echo "prebuild-node.sh: another prebuild is running" >&2; exit 0; }
t0=$SECONDS
step() {
  local s=$SECONDS
  if "$@" >/dev/null; then echo "prebuild-node.sh: $* done in $((SECONDS - s))s"; else echo "prebuild-node.sh: $* FAILED after $((SECONDS - s))s (the suite will retry it)"; fi
}
step bash "$HERE/node-tools.sh"
step bash "$HERE/pause-image.sh"
step bash "$HERE/../images.sh"
echo "prebuild-node.sh: finished in $((SECONDS - t0))s"
