# Durability across kill -9 of the server (the host kills and restarts it while this runs).
# A writer keeps creating files on a hard mount: fsync'd files (sync FILE), files written under
# a temporary name, fsync'd and renamed into place, files not fsync'd, and a log appended with
# fdatasync after each record. The host kills the server at random moments and starts it again;
# the hard mount carries on. After "stop" the guest syncs and says WRITES-DONE; the host kills
# the server once more and restarts it (so what is read next comes from crash recovery alone);
# after "verify" the guest mounts afresh and checks every file byte for byte.
mount_zerofs "hard,timeo=20"
D="$MNT/crash"
mkdir -p "$D"
SYNCED=/tmp/synced     # "name sha256" of files whose fsync (or fsync + rename) returned
LATER=/tmp/unsynced    # written without fsync (durable only after the final sync)
: > "$SYNCED"
: > "$LATER"
i=0
notes=0
echo "CRASH-WRITING"
while [[ ! -e /run/job/stop ]]; do
  i=$((i + 1))
  size=$(((RANDOM * 32768 + RANDOM) % (1536 << 10) + 1))
  head -c "$size" /dev/urandom > /tmp/w
  sum=$(sha256sum < /tmp/w)
  sum=${sum%% *}
  case $((i % 3)) in
    0)
      cp /tmp/w "$D/f$i"
      sync "$D/f$i"
      echo "f$i $sum" >> "$SYNCED"
      ;;
    1)
      cp /tmp/w "$D/t$i.tmp"
      sync "$D/t$i.tmp"
      if ! mv "$D/t$i.tmp" "$D/r$i"; then
        # A RENAME the server carried out just before it was killed is retransmitted after the
        # restart, and the new server answers NOENT (its duplicate-request cache died with
        # it): NFSv3's non-idempotent retry, not a loss, as long as the rename did happen.
        [[ -e "$D/r$i" && ! -e "$D/t$i.tmp" ]] || fail "rename t$i.tmp -> r$i failed and did not happen"
        echo "NOTE: rename of t$i.tmp was retransmitted after a restart and answered ENOENT; it had happened"
        notes=$((notes + 1))
      fi
      echo "r$i $sum" >> "$SYNCED"
      ;;
    2)
      cp /tmp/w "$D/u$i"
      echo "u$i $sum" >> "$LATER"
      ;;
  esac
  printf 'record %d %s\n' "$i" "$sum" >> "$D/log"
  sync -d "$D/log"
  echo "$i" > /tmp/log-records
  if ((i % 5 == 0)); then echo "CRASH-PROGRESS $i"; fi
done
step final_sync sync
echo "WRITES-DONE $i files"
wait_host verify
cd /
step remount remount_zerofs "hard,timeo=20"

check_list() {
  local list=$1 what=$2 bad=0 name want got
  while read -r name want; do
    if [[ ! -f "$D/$name" ]]; then
      echo "LOST ($what): $name is missing"
      bad=$((bad + 1))
      continue
    fi
    got=$(sha256sum < "$D/$name")
    got=${got%% *}
    if [[ $got != "$want" ]]; then
      echo "CORRUPT ($what): $name has sha256 $got, expected $want (size $(stat -c %s "$D/$name"))"
      bad=$((bad + 1))
    fi
  done < "$list"
  echo "checked $(wc -l < "$list") $what files: $bad bad"
  return "$bad"
}
bad=0
check_list "$SYNCED" "fsync'd" || bad=1
check_list "$LATER" "synced at the end" || bad=1
records=$(cat /tmp/log-records)
expect_eq "log records" "$(wc -l < "$D/log")" "$records"
n=0
while read -r word num sum; do
  n=$((n + 1))
  [[ $word == record && $num == "$n" && ${#sum} == 64 ]] || { echo "CORRUPT log line $n: $word $num $sum"; bad=1; break; }
done < "$D/log"
leftovers=$(find "$D" -name '*.tmp' | wc -l)
expect_eq "temporary files left" "$leftovers" 0
[[ $bad == 0 ]] || fail "data lost or corrupted across kill -9"
echo "---- the kernel client's view of the restarts (dmesg) ----"
dmesg | tail -n +$((_DMESG_START + 1)) | grep -i 'nfs\|rpc' | tail -n 20 || true
echo "CRASH-VERIFIED files=$i notes=$notes"
cd /
umount "$MNT"
