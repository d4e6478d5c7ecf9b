# File operations with the guest's coreutils on the kernel NFS mount, then a large file copied
# in and out byte-exact. BIG_MIB (default 256) sets the large file's size.
mount_zerofs hard
cd "$MNT"

ops() {
  # create / write / read
  echo "hello zerofs" > a.txt
  expect_eq "read back" "$(cat a.txt)" "hello zerofs"
  expect_eq "size" "$(stat -c %s a.txt)" 13
  # append
  echo "second line" >> a.txt
  expect_eq "append" "$(tail -n 1 a.txt)" "second line"
  expect_eq "lines" "$(wc -l < a.txt)" 2
  # overwrite in the middle without truncating
  printf 'HELLO' | dd of=a.txt bs=1 seek=0 conv=notrunc status=none
  expect_eq "overwrite" "$(head -n 1 a.txt)" "HELLO zerofs"
  # truncate: shrink, grow (the grown part reads as zeros)
  truncate -s 5 a.txt
  expect_eq "truncate down" "$(cat a.txt)" "HELLO"
  truncate -s 4096 a.txt
  expect_eq "truncate up size" "$(stat -c %s a.txt)" 4096
  expect_eq "truncate up zeros" "$(tail -c 4091 a.txt | tr -d '\0' | wc -c)" 0
  : > a.txt
  expect_eq "truncate to 0" "$(stat -c %s a.txt)" 0
  # rename (same dir, across dirs, over an existing file)
  echo one > r1; echo two > r2
  mv r1 r1.renamed
  [[ ! -e r1 && -f r1.renamed ]] || fail "rename in a directory"
  mkdir -p d1/d2
  mv r1.renamed d1/d2/moved
  expect_eq "rename across dirs" "$(cat d1/d2/moved)" one
  mv -f r2 d1/d2/moved
  expect_eq "rename over a file" "$(cat d1/d2/moved)" two
  [[ ! -e r2 ]] || fail "rename source still there"
  mv d1/d2 d3
  expect_eq "directory rename" "$(cat d3/moved)" two
  # hard links
  echo linked > l1
  ln l1 l2
  expect_eq "link count" "$(stat -c %h l1)" 2
  expect_eq "same inode" "$(stat -c %i l1)" "$(stat -c %i l2)"
  echo more >> l2
  expect_eq "write through link" "$(cat l1)" "$(printf 'linked\nmore')"
  rm l1
  expect_eq "link count after unlink" "$(stat -c %h l2)" 1
  expect_eq "content after unlink" "$(head -n 1 l2)" linked
  # symlinks
  ln -s l2 s1
  ln -s d3/moved s2
  ln -s /nonexistent/target dangling
  expect_eq "readlink" "$(readlink s1)" l2
  expect_eq "follow" "$(cat s2)" two
  [[ -L dangling && ! -e dangling ]] || fail "dangling symlink"
  expect_eq "lstat type" "$(stat -c %F s1)" "symbolic link"
  # mkdir / rmdir, non-empty rmdir fails
  mkdir -p tree/a/b/c
  rmdir tree/a/b/c
  if rmdir tree/a 2>/dev/null; then fail "rmdir of a non-empty directory succeeded"; fi
  rm -r tree
  [[ ! -e tree ]] || fail "rm -r"
  expect_eq "dir nlink" "$(mkdir -p n/x n/y && stat -c %h n)" 4
  # chmod / chown
  touch perm
  chmod 0640 perm
  expect_eq "chmod" "$(stat -c %a perm)" 640
  chmod u+s,g+s perm
  expect_eq "chmod setid" "$(stat -c %a perm)" 6640
  chown 1234:5678 perm
  expect_eq "chown" "$(stat -c %u:%g perm)" 1234:5678
  chown 0:0 perm
  # utimes
  touch -m -d '2001-02-03 04:05:06' perm
  expect_eq "mtime" "$(stat -c %Y perm)" "$(date -d '2001-02-03 04:05:06' +%s)"
  touch -a -d '2002-03-04 05:06:07.123456789' perm
  expect_eq "atime" "$(stat -c %X perm)" "$(date -d '2002-03-04 05:06:07' +%s)"
  expect_eq "atime nsec" "$(stat -c %x perm | sed 's/.*\.\([0-9]*\).*/\1/')" 123456789
  # directory listing
  mkdir many
  for i in $(seq 1 300); do : > "many/f$i"; done
  expect_eq "readdir count" "$(ls many | wc -l)" 300
  expect_eq "readdir -la count" "$(ls -la many | grep -c ' f[0-9]')" 300
  rm -r many
  # everything is the same after dropping the guest's caches
  local before after
  before=$(ls -laR --time-style=+%s "$MNT" | sha256sum)
  cd /
  remount_zerofs hard
  cd "$MNT"
  after=$(ls -laR --time-style=+%s "$MNT" | sha256sum)
  expect_eq "tree after remount" "$after" "$before"
}
step fileops ops

big() {
  local n=${BIG_MIB:-256}
  # Incompressible content.
  head -c $((n * 1024 * 1024)) /dev/urandom > /tmp/big
  local want
  want=$(sha256sum < /tmp/big)
  step big_copy_in cp /tmp/big "$MNT/big"
  step big_sync sync
  cd /
  remount_zerofs hard
  expect_eq "big size" "$(stat -c %s "$MNT/big")" $((n * 1024 * 1024))
  rm /tmp/big
  step big_copy_out cp "$MNT/big" /tmp/big.out
  expect_eq "big sha256 (copied out)" "$(sha256sum < /tmp/big.out)" "$want"
  rm /tmp/big.out
  # and once more, read straight from the mount
  echo 3 > /proc/sys/vm/drop_caches
  expect_eq "big sha256 (read in place)" "$(sha256sum < "$MNT/big")" "$want"
  rm "$MNT/big"
}
step big big
cd /
umount "$MNT"
echo "files: ok"
