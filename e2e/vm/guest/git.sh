# git on the kernel NFS mount: init, add and commit a few thousand small files, fsck, gc, clone
# (a file:// clone transfers a pack and checks it out; a local clone hard-links the packs), and
# the checkout matches. FILES (default 2000) sets the number of files.
mount_zerofs hard
FILES=${FILES:-2000}
export GIT_AUTHOR_NAME=e2e GIT_AUTHOR_EMAIL=e2e@zerofs.invalid GIT_COMMITTER_NAME=e2e GIT_COMMITTER_EMAIL=e2e@zerofs.invalid
git config --global init.defaultBranch main
git config --global gc.auto 0

# The tree is made on the guest's tmpfs (no forks per file) and copied onto the mount.
make_tree() {
  local d
  mkdir -p /tmp/tree/src
  for ((m = 0; m < 40; m++)); do mkdir -p /tmp/tree/src/m$m/s{0..6}; done
  for ((i = 0; i < FILES; i++)); do
    d="/tmp/tree/src/m$((i % 40))/s$((i % 7))"
    printf 'file %d\nline two of %d\n%s\n' "$i" "$i" "$((i * 7919 % 10007))" > "$d/f$i.txt"
  done
  chmod +x /tmp/tree/src/m0/s0/f0.txt
  ln -s m1 /tmp/tree/src/link-to-m1
}
make_tree

mkdir "$MNT/repo"
cd "$MNT/repo"
step git_init git init -q
step git_tree cp -r /tmp/tree/src .
step git_add git add -A
step git_commit git commit -q -m "a few thousand small files"
for i in 1 2 3; do
  printf 'change %d\n' "$i" >> "src/m$i/s$i/f$i.txt"
  git rm -q "src/m$i/s$i/f$((i + 280)).txt"
  git add -A
  git commit -q -m "change $i"
done
expect_eq "files in HEAD" "$(git ls-files | wc -l)" "$((FILES + 1 - 3))"
expect_eq "commits" "$(git rev-list --count HEAD)" 4
step git_gc git gc -q
step git_fsck git fsck --full --strict --no-progress
cd "$MNT"
step git_clone_file git clone -q --no-local "file://$MNT/repo" clone-file
step git_clone_local git clone -q --no-checkout repo clone-local
expect_eq "hard-linked pack" "$(stat -c %h "$(ls repo/.git/objects/pack/*.pack | head -n 1)")" 2
for c in clone-local clone-file; do
  expect_eq "$c HEAD" "$(git -C "$c" rev-parse HEAD)" "$(git -C repo rev-parse HEAD)"
  git -C "$c" fsck --full --strict --no-progress
done
expect_eq "clone status" "$(git -C clone-file status --porcelain | wc -l)" 0
cd /
remount_zerofs hard
cd "$MNT"
step git_fsck_remount git -C clone-file fsck --full --strict --no-progress
# hash every checked-out file as read from the server: the blob ids must be HEAD's
cd clone-file
git ls-files -s | awk '$1 != "120000" { print $2 }' > /tmp/want-ids
git ls-files -s | awk '$1 != "120000" { print $4 }' > /tmp/paths
step git_rehash git hash-object --stdin-paths < /tmp/paths > /tmp/got-ids
cmp -s /tmp/want-ids /tmp/got-ids || fail "checked-out files differ from their blobs after a remount"
expect_eq "files re-hashed" "$(wc -l < /tmp/got-ids)" "$((FILES - 3))"
cd "$MNT"
expect_eq "status after remount" "$(git -C repo status --porcelain | wc -l)" 0
cd /
umount "$MNT"
