#!/usr/bin/env bash
# Installs Debian packages the tests need when one of their commands is missing.
# Usage: ensure-apt.sh <command> <package> [<command> <package> ...]
# A <command> with a slash is a file that must exist instead (e.g. a header or a static library);
# "dpkg:<package>" means the package itself must be installed (when no file tells it apart).
set -euo pipefail
missing=()
while [[ $# -ge 2 ]]; do
  if [[ $1 == dpkg:* ]]; then dpkg -s "${1#dpkg:}" >/dev/null 2>&1 || missing+=("$2")
  elif [[ $1 == */* ]]; then [[ -e $1 ]] || missing+=("$2")
  else command -v "$1" >/dev/null 2>&1 || missing+=("$2"); fi
  shift 2
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
echo "ensure-apt.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || $SUDO apt-get update
# Other sessions on the machine may be installing too: wait for the dpkg lock instead of failing.
$SUDO apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
