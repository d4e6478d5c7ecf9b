# Two guest processes write concurrently on the kernel NFS mount: different files in one shared
# directory (creates, renames, unlinks, appends), a large file each, then a fio job with two
# writers verifying their data. Everything is checked again after a remount.
mount_zerofs hard
S="$MNT/shared"
mkdir -p "$S"
FILES=${FILES:-300}

# Few forks per file (they are slow under emulation): printf and rm are builtins or cheap, one
# file in three is written under a temporary name and renamed.
writer() {
  local w=$1 manifest=/tmp/manifest-$1
  for ((i = 0; i < FILES; i++)); do
    if ((i % 3 == 0)); then
      printf '%s %d %0*d\n' "$w" "$i" $((i * 7 % 3000 + 1)) 0 > "$S/$w-$i.tmp"
      mv "$S/$w-$i.tmp" "$S/$w-$i"
    else
      printf '%s %d %0*d\n' "$w" "$i" $((i * 7 % 3000 + 1)) 0 > "$S/$w-$i"
    fi
    if ((i % 10 == 9)); then rm "$S/$w-$((i - 5))"; fi
    printf '%s:%d\n' "$w" "$i" >> "$S/$w.log"
    if ((i % 50 == 0)); then ls "$S" > /dev/null; fi
  done
  # a large file each, written in 1 MiB blocks
  head -c $((32 << 20)) /dev/urandom > "/tmp/$w.big"
  dd if="/tmp/$w.big" of="$S/$w.big" bs=1M status=none
  # expected contents, computed on the guest's tmpfs
  mkdir -p "/tmp/expect-$w"
  for ((i = 0; i < FILES; i++)); do
    if ((i % 10 == 4)); then continue; fi
    printf '%s %d %0*d\n' "$w" "$i" $((i * 7 % 3000 + 1)) 0 > "/tmp/expect-$w/$w-$i"
  done
  cp "/tmp/$w.big" "/tmp/expect-$w/$w.big"
  (cd "/tmp/expect-$w" && sha256sum ./*) | sed "s#\./#$S/#" > "$manifest"
}

both() {
  writer A &
  local a=$!
  writer B &
  local b=$!
  wait $a || fail "writer A failed"
  wait $b || fail "writer B failed"
}
step writers both
expect_eq "entries in the shared directory" "$(ls "$S" | wc -l)" $((2 * (FILES - FILES / 10) + 4))
expect_eq "A log" "$(wc -l < "$S/A.log")" "$FILES"
cd /tmp
step fio fio --name=two-writers --directory="$MNT" --numjobs=2 --rw=randwrite --bs=4k-64k --size=24m \
  --ioengine=psync --fsync=32 --eta=never --verify=crc32c --do_verify=1 --verify_fatal=1 --group_reporting --output=/tmp/fio.out
grep -q "err= 0" /tmp/fio.out || { cat /tmp/fio.out; fail "fio reported errors"; }
cd /
remount_zerofs hard
step verify sha256sum --quiet -c /tmp/manifest-A /tmp/manifest-B
fio --name=two-writers --directory="$MNT" --numjobs=2 --rw=randwrite --bs=4k-64k --size=24m \
  --ioengine=psync --eta=never --verify=crc32c --verify_only --verify_fatal=1 --group_reporting --output=/tmp/fio2.out \
  || { cat /tmp/fio2.out; fail "fio verify after remount failed"; }
umount "$MNT"
