# Sourced first by every guest script (bash, as root, in a chroot of the host's root).
# Exported by the harness: ZEROFS_PORT and NFS_SERVER (the server on the host: qemu forwards
# NFS_SERVER:ZEROFS_PORT, and nothing else, to the host's 127.0.0.1:ZEROFS_PORT), NODE (the
# host's pinned node binary), REPO (the repository on the host, readable through the chroot).
set -Eeuo pipefail
export LC_ALL=C
export HOME=/tmp/home
mkdir -p "$HOME"
MNT=${MNT:-/tmp/zerofs}
NFS_SERVER=${NFS_SERVER:?the harness exports the forwarded server address}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

_on_err() {
  echo "ERROR: '${BASH_COMMAND}' exited $1 (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]})" >&2
}
trap '_on_err $?' ERR

# dmesg lines from before this script are boot noise: failure reports show only the newer ones.
_DMESG_START=$(dmesg | wc -l)

_on_exit() {
  local st=$?
  if [[ $st -ne 0 ]]; then
    echo "---- guest script failed (status $st); nfs mounts and dmesg since the script started ----"
    grep ' nfs ' /proc/mounts || true
    dmesg | tail -n +$((_DMESG_START + 1)) | tail -n 60
  fi
}
trap _on_exit EXIT

# mount_zerofs [extra-options [mountpoint]]: the stock kernel-client options users use.
mount_zerofs() {
  local extra=${1:-hard} mnt=${2:-$MNT}
  mkdir -p "$mnt"
  if ! mount -t nfs -o "vers=3,nolock,tcp,port=$ZEROFS_PORT,mountport=$ZEROFS_PORT,$extra" "$NFS_SERVER:/" "$mnt"; then
    echo "---- mount failed; dmesg since the script started ----"
    dmesg | tail -n +$((_DMESG_START + 1)) | tail -n 30
    fail "mount -t nfs $NFS_SERVER:/ $mnt (port $ZEROFS_PORT, $extra) failed"
  fi
  if [[ -z ${_CLOCK_SYNCED:-} ]]; then
    # The guest's clock starts from the RTC (whole seconds), so it lags the host by up to a
    # second, and make sees files touched with the server's time as "in the future": take the
    # server's time from a file it creates.
    _CLOCK_SYNCED=1
    local probe="$mnt/.e2e-clock-$$"
    : > "$probe"
    date -s "@$(stat -c %.9Y "$probe")" > /dev/null
    rm -f "$probe"
  fi
}

# remount_zerofs [extra-options]: unmount and mount again, so reads come from the server and
# not from the guest's page cache.
remount_zerofs() {
  sync
  umount "$MNT"
  echo 3 > /proc/sys/vm/drop_caches
  mount_zerofs "${1:-hard}"
}

now() { date +%s.%N; }

# fd 3 is the console, whatever a caller redirects: step times always reach the host.
exec 3>&1

# step NAME command...: runs the command and prints "STEP NAME <seconds>".
step() {
  local name=$1 t0 t1
  shift
  t0=$(now)
  "$@"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" -v n="$name" 'BEGIN { printf "STEP %s %.2f\n", n, b - a }' >&3
}

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
  if [[ "$2" != "$3" ]]; then fail "$1: got '$2', expected '$3'"; fi
}

# wait_host NAME [SECONDS]: waits until the host test creates /run/job/NAME.
wait_host() {
  local name=$1 limit=${2:-600} waited=0
  until [[ -e /run/job/$name ]]; do
    sleep 0.2
    waited=$((waited + 1))
    if ((waited > limit * 5)); then fail "the host did not signal '$name' within ${limit} s"; fi
  done
}

# gen_c_project DIR N: a small C project (a header, N sources, a static library, a program and
# a Makefile with dependency files) in DIR.
gen_c_project() {
  local P=$1 N=$2
  mkdir -p "$P/src" "$P/include"
  cat > "$P/include/proj.h" <<'H'
#ifndef PROJ_H
#define PROJ_H
#include <stdint.h>
uint64_t mix(uint64_t x);
H
  for ((i = 0; i < N; i++)); do
    echo "uint64_t part$i(uint64_t x);" >> "$P/include/proj.h"
    cat > "$P/src/part$i.c" <<C
#include "proj.h"
static uint64_t table[64];
uint64_t part$i(uint64_t x) {
  for (int k = 0; k < 64; k++) table[k] = mix(x + (uint64_t)k * $((i + 1))u);
  uint64_t acc = 0;
  for (int k = 0; k < 64; k++) acc ^= table[k] >> (k % 7);
  return acc + $i;
}
C
  done
  echo "#endif" >> "$P/include/proj.h"
  cat > "$P/src/mix.c" <<'C'
#include "proj.h"
uint64_t mix(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
  return x;
}
C
  {
    echo '#include <stdio.h>'
    echo '#include <inttypes.h>'
    echo '#include "proj.h"'
    echo 'int main(void) {'
    echo '  uint64_t sum = 0;'
    for ((i = 0; i < N; i++)); do echo "  sum += part$i($i);"; done
    echo '  printf("%" PRIu64 "\n", sum);'
    echo '  return 0;'
    echo '}'
  } > "$P/main.c"
  cat > "$P/Makefile" <<'M'
CFLAGS := -O2 -Wall -Werror -Iinclude -MMD -MP
SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:.c=.o)
prog: main.o libproj.a
	$(CC) -o $@ main.o libproj.a
libproj.a: $(OBJS)
	$(AR) rcs $@ $^
%.o: %.c
	$(CC) $(CFLAGS) -c -o $@ $<
clean:
	rm -f prog libproj.a main.o main.d $(OBJS) $(OBJS:.o=.d)
.PHONY: clean
-include $(OBJS:.o=.d) main.d
M
}
