# Server restarts under a guest that holds open files, a cwd and a process's cwd on the mount:
# after a clean restart (SIGTERM, start) and after kill -9 + start, every one of them still works
# (no ESTALE): file handles outlive the server process.
mount_zerofs "hard,timeo=20"
mkdir -p "$MNT/work/sub/deeper"
cd "$MNT/work"
echo "data" > file
printf 'line1\n' > appendme
echo "in sub" > sub/inside
exec 5< file
exec 6>> appendme
exec 7< sub/inside
(cd sub/deeper && exec sleep 100000) &
sleeper=$!

use_everything() {
  local round=$1
  # Drop the guest's clean page cache, dentries and inodes that are not in use: what follows
  # goes to the server with the handles the client already holds.
  echo 3 > /proc/sys/vm/drop_caches
  expect_eq "cwd after $round" "$(pwd)" "$MNT/work"
  ls -la . > /dev/null
  stat . > /dev/null
  local line
  read -r line <&5 || true
  [[ $round != clean ]] || expect_eq "read from a descriptor opened before the restart" "$line" "data"
  echo "line-$round" >&6
  sync appendme
  read -r line <&7 || true
  [[ $round != clean ]] || expect_eq "read from sub/inside" "$line" "in sub"
  expect_eq "process cwd" "$(readlink /proc/$sleeper/cwd)" "$MNT/work/sub/deeper"
  ls "/proc/$sleeper/cwd/" > /dev/null
  touch "/proc/$sleeper/cwd/created-$round"
  [[ -e sub/deeper/created-$round ]] || fail "file created through the process's cwd is missing"
  echo "new $round" > "new-$round"
  expect_eq "new file" "$(cat "new-$round")" "new $round"
  cd sub && cd deeper && cd ../.. 
  expect_eq "appended lines" "$(tail -n 1 appendme)" "line-$round"
  mv "new-$round" "renamed-$round"
  rm "renamed-$round"
  echo "RESTART-$round-OK"
}

echo "RESTART-READY clean"
wait_host restarted-clean
use_everything clean
echo "RESTART-READY kill9"
wait_host restarted-kill9
use_everything kill9
expect_eq "append file" "$(cat appendme)" "$(printf 'line1\nline-clean\nline-kill9')"
if dmesg | tail -n +$((_DMESG_START + 1)) | grep -i stale; then fail "the kernel logged stale handles"; fi
kill "$sleeper"
exec 5<&- 6>&- 7<&-
cd /
umount "$MNT"
