# Fixed workloads timed on each target: the guest's tmpfs, the ZeroFS mount and, when it can be
# set up, the guest kernel's own nfsd exporting a tmpfs over loopback (same client, same mount
# options). Prints "STEP bench_<workload>_<target> <seconds>" for the host to tabulate.
# /run/job/tree.tar is the source tree to untar (made by the host).
targets=(tmpfs zerofs)
declare -A DIR=([tmpfs]=/tmp/bench-tmpfs [zerofs]="$MNT/bench" [nfsd]=/tmp/knfsd/bench)
mkdir -p /tmp/bench-tmpfs
mount_zerofs hard
mkdir -p "$MNT/bench"

setup_nfsd() {
  mkdir -p /tmp/nfsd-export /tmp/knfsd
  mount -t tmpfs -o size=2g export /tmp/nfsd-export
  # The host root is read-only here: nfs-utils keep their state on a tmpfs.
  mount -t tmpfs nfsstate /var/lib/nfs
  mkdir -p /var/lib/nfs/rpc_pipefs /var/lib/nfs/v4recovery /run/rpcbind
  touch /var/lib/nfs/etab /var/lib/nfs/rmtab
  mount -t nfsd nfsd /proc/fs/nfsd
  rpcbind -w
  exportfs -o rw,no_root_squash,no_subtree_check,insecure,sync,fsid=1 127.0.0.1:/tmp/nfsd-export
  rpc.mountd --no-nfs-version 4
  rpc.nfsd --no-nfs-version 4 4
  mount -t nfs -o vers=3,nolock,tcp,hard 127.0.0.1:/tmp/nfsd-export /tmp/knfsd
  mkdir -p /tmp/knfsd/bench
}
if [[ ${BENCH_NFSD:-1} == 1 ]] && command -v rpc.nfsd > /dev/null; then
  if (set +e; trap - ERR; setup_nfsd) > /tmp/nfsd-setup.log 2>&1; then
    targets+=(nfsd)
  else
    echo "BENCH-NOTE nfsd unavailable: $(tail -n 3 /tmp/nfsd-setup.log | tr '\n' ' ')"
  fi
else
  echo "BENCH-NOTE nfsd unavailable: nfs-kernel-server is not installed"
fi

# Untimed preparation on the guest's tmpfs: the tarball in RAM, a git repository of the tree.
cp /run/job/tree.tar /tmp/tree.tar
mkdir -p /tmp/src-repo
tar -xf /tmp/tree.tar -C /tmp/src-repo
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@zerofs.invalid GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@zerofs.invalid
(cd /tmp/src-repo && git init -q && git add -A && git commit -q -m tree && git gc -q)
echo "BENCH-TREE $(tar -tf /tmp/tree.tar | grep -vc '/$') files, $(($(stat -c %s /tmp/tree.tar) >> 20)) MiB"

untar() { mkdir "$1/untar" && tar -xf /tmp/tree.tar -C "$1/untar" && sync; }
sqlite_inserts() {
  {
    echo "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB);"
    for ((i = 0; i < 200; i++)); do
      echo "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100)"
      echo "  INSERT INTO t(k, v) SELECT printf('k%d-%d', $i, x), randomblob(100) FROM c; COMMIT;"
    done
  } | sqlite3 -bail "$1/bench.db" > /dev/null
}
clone() { git clone -q --no-local file:///tmp/src-repo "$1/clone" && sync; }
compile() { make -s -C "$1/proj" -j2 prog && sync; }
rmtree() { rm -rf "$1/untar" "$1/clone" && sync; }

for t in "${targets[@]}"; do
  d=${DIR[$t]}
  gen_c_project "$d/proj" 16
  step "bench_untar_$t" untar "$d"
  step "bench_sqlite_$t" sqlite_inserts "$d"
  step "bench_clone_$t" clone "$d"
  step "bench_compile_$t" compile "$d"
  step "bench_rm-rf_$t" rmtree "$d"
done
cd /
umount "$MNT"
if [[ " ${targets[*]} " == *" nfsd "* ]]; then umount /tmp/knfsd; fi
echo "BENCH-DONE"
