#!/usr/bin/env bash
# Prints the directory of a bootable test VM image (vmlinuz + initrd.gz) for the end-to-end
# suite (e2e/): Debian's kernel (it has the NFSv3 client, 9p and virtio as modules) and a
# busybox initramfs whose /init mounts the host's root read-only over virtio-9p, gives the
# guest tmpfs /tmp and /run, mounts the job folder (9p tag "job") at /run/job and runs
# /run/job/guest.sh as root in a chroot of the host root, so the guest runs the host's own
# binaries (mount.nfs, sqlite3, git, gcc...). The console's last line is GUEST-EXIT=<status>;
# the status is also left in /run/job/exit-status.
#
# Installs what it needs from Debian's packages (qemu, busybox-static, nfs-common, ...) and
# builds once per machine into ${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools/vm-<key>/, where
# the key is a hash of this script (changing the recipe rebuilds).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KEY="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
CACHE="${ZEROFS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-tools}"
DEST="$CACHE/vm-$KEY"
# One at a time (apt and the build); concurrent callers wait, then find everything done.
mkdir -p "$CACHE"
exec 9>"$CACHE/.vm-image.lock"
flock 9

# Host tools the harness and the guest (which runs the host's binaries) use.
bash "$here/ensure-apt.sh" \
  qemu-system-x86_64 qemu-system-x86 mount.nfs nfs-common cpio cpio depmod kmod \
  sqlite3 sqlite3 git git gcc gcc make make fio fio setpriv util-linux xz xz-utils
# The initramfs needs the static busybox (the "busybox" package is a dynamic build).
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends busybox-static >/dev/null \
    || { $SUDO apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends busybox-static >/dev/null; }
fi

if [[ -f "$DEST/ok" ]]; then echo "$DEST"; exit 0; fi
mkdir -p "$DEST"
echo "vm-image.sh: building the test VM image into $DEST (one-time)" >&2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
if [[ -z "$pkg" ]]; then
  apt-get update -qq >/dev/null
  pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
fi
[[ -n "$pkg" ]] || { echo "vm-image.sh: no linux-image-amd64 package found in the apt lists" >&2; exit 1; }
apt-get download "$pkg" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; apt-get download "$pkg" >/dev/null; }
dpkg -x ./"$pkg"_*.deb kroot
kver="$(ls kroot/lib/modules)"
depmod -b kroot "$kver"
M="lib/modules/$kver"
mkdir -p initrd/{bin,proc,sys,dev,host,tmp} "initrd/$M"
cp /bin/busybox initrd/bin/busybox
for l in sh mount umount modprobe mkdir cat echo poweroff chroot ip sleep hostname; do ln -sf busybox "initrd/bin/$l"; done
# nfsd (+ its deps) too, so a benchmark can compare with the kernel's own NFS server in the guest.
mods="kernel/fs/nfs/nfsv3.ko kernel/fs/nfsd/nfsd.ko kernel/fs/9p/9p.ko kernel/net/9p/9pnet_virtio.ko kernel/drivers/virtio/virtio_pci.ko kernel/drivers/net/virtio_net.ko"
# What a Kubernetes node needs (e2e/node/): overlayfs (containerd), bridge + veth (CNI bridge),
# netfilter for kube-proxy's iptables (nft backend) rules and the CNI's masquerade. Loaded only
# when a job asks (see /run/job/modules in init): the host root has no /lib/modules for this
# kernel, and the kernel's own module autoloading has no /sbin/modprobe to call.
# crc32c_generic: libcrc32c (nf_conntrack, nf_tables) has a soft dependency on a crc32c, which
# busybox's modprobe does not follow ("libcrc32c: unknown symbol"); load it first.
# ext4 + virtio_blk: the node's containerd root is a disk image prepared on the host.
mods+=" kernel/fs/overlayfs/overlay.ko kernel/net/bridge/bridge.ko kernel/net/bridge/br_netfilter.ko kernel/drivers/net/veth.ko kernel/crypto/crc32c_generic.ko"
mods+=" kernel/fs/ext4/ext4.ko kernel/drivers/block/virtio_blk.ko"
mods+=" $(cd "kroot/$M" && find kernel/net/netfilter kernel/net/ipv4/netfilter kernel/net/ipv6/netfilter -name '*.ko' | sort | tr '\n' ' ')"
for m in $mods; do
  for f in $m $(grep "^$m:" "kroot/$M/modules.dep" | cut -d: -f2); do
    mkdir -p "initrd/$M/$(dirname "$f")"
    cp "kroot/$M/$f" "initrd/$M/$f"
  done
done
cp kroot/$M/modules.* "initrd/$M/"
cat > initrd/init <<'INIT'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio_pci virtio_net 9pnet_virtio 9p nfsv3; do modprobe $m || echo "init: modprobe $m failed"; done
modprobe nfsd 2>/dev/null
# The host root, read-only; cache=loose because it does not change while the VM runs (exec-heavy
# work runs ~2.4x faster than uncached).
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host || echo "init: cannot mount the host root"
hostname zerofs-e2e
ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2
for d in proc sys dev; do mount --bind /$d /host/$d; done
mkdir -p /host/dev/pts /host/dev/shm
ln -sf /proc/self/fd /host/dev/fd; ln -sf /proc/self/fd/0 /host/dev/stdin; ln -sf /proc/self/fd/1 /host/dev/stdout; ln -sf /proc/self/fd/2 /host/dev/stderr
mount -t devpts devpts /host/dev/pts; mount -t tmpfs -o mode=1777 shm /host/dev/shm
mount -t tmpfs -o mode=1777 tmp /host/tmp; mount -t tmpfs run /host/run
# The host root again, without the guest's tmpfs over /tmp and /run (a plain bind leaves
# submounts out): a checkout under the host's /tmp (CI clones) stays reachable as /run/host/tmp.
mkdir -p /host/run/host; mount -o bind /host /host/run/host
mkdir -p /host/run/job; mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 job /host/run/job
# Modules a job asks for (one name per line or space-separated), from this initramfs.
if [ -f /host/run/job/modules ]; then
  for m in $(cat /host/run/job/modules); do modprobe "$m" || echo "init: modprobe $m failed"; done
fi
echo "GUEST-BOOTED"
HOME=/tmp/home PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/tmp chroot /host /bin/sh /run/job/guest.sh
status=$?
echo "$status" > /host/run/job/exit-status
echo "GUEST-EXIT=$status"
poweroff -f
INIT
chmod +x initrd/init
(cd initrd && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$work/initrd.gz")
cp "kroot/boot/vmlinuz-$kver" "$DEST/vmlinuz"
mv "$work/initrd.gz" "$DEST/initrd.gz"
echo "$pkg $kver" > "$DEST/kernel-version"
touch "$DEST/ok"
echo "vm-image.sh: built $DEST ($kver)" >&2
echo "$DEST"
