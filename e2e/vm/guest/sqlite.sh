# SQLite on the kernel NFS mount: 100,000 rows in 100 transactions, queries, then a remount (so
# what follows reads the server, not the page cache), integrity_check and the same answers; once with
# synchronous=OFF (no fsync: the write-back path) and once with synchronous=FULL (an fsync per
# commit: NFS COMMIT). ROWS (default 100000) sets the row count.
mount_zerofs hard
ROWS=${ROWS:-100000}
TXNS=100
PER=$((ROWS / TXNS))

workload() {
  local sync=$1 db="$MNT/test-$1.db"
  {
    echo "PRAGMA journal_mode=DELETE; PRAGMA synchronous=$sync;"
    echo "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT NOT NULL, n INTEGER NOT NULL, v BLOB NOT NULL);"
    echo "CREATE INDEX t_k ON t(k);"
    for ((i = 0; i < TXNS; i++)); do
      echo "BEGIN;"
      echo "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $PER)"
      echo "  INSERT INTO t(k, n, v) SELECT printf('key-%08d', $i * $PER + x), $i * $PER + x, randomblob(64 + x % 200) FROM c;"
      echo "COMMIT;"
    done
  } | step "sqlite_insert_$sync" sqlite3 -bail "$db" > /dev/null
  local q="SELECT count(*), sum(n), count(DISTINCT k), min(k), max(k) FROM t;"
  local want
  want="$ROWS|$((ROWS * (ROWS + 1) / 2))|$ROWS|key-00000001|$(printf 'key-%08d' "$ROWS")"
  expect_eq "query ($sync)" "$(sqlite3 "$db" "$q")" "$want"
  expect_eq "index lookup ($sync)" "$(sqlite3 "$db" "SELECT n FROM t WHERE k = 'key-00004242';")" 4242
  step "sqlite_update_$sync" sqlite3 -bail "$db" "PRAGMA synchronous=$sync; BEGIN; UPDATE t SET n = n + 1 WHERE id % 10 = 0; DELETE FROM t WHERE id % 100 = 1; COMMIT;"
  local after
  after=$(sqlite3 "$db" "SELECT count(*), sum(n) FROM t;")
  cd /
  remount_zerofs hard
  expect_eq "integrity_check after remount ($sync)" "$(step "sqlite_check_$sync" sqlite3 "$db" 'PRAGMA integrity_check;')" ok
  expect_eq "rows after remount ($sync)" "$(sqlite3 "$db" "SELECT count(*), sum(n) FROM t;")" "$after"
  [[ ! -e "$db-journal" ]] || fail "hot journal left behind ($sync)"
}
workload OFF
workload FULL
umount "$MNT"
