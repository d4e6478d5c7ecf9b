# The guest's network is restricted: only the forwarded host loopback ports are reachable
# (OPEN_PORT here, as $NFS_SERVER:OPEN_PORT); the host itself (10.0.2.2), a host port that is
# listening but not forwarded (CLOSED_PORT) and any outside address are not.
probe() {
  timeout 5 bash -c "exec 3<>/dev/tcp/$1/$2" 2> /dev/null
}
probe "$NFS_SERVER" "$OPEN_PORT" || fail "the forwarded port $NFS_SERVER:$OPEN_PORT is unreachable"
echo "reached forwarded $NFS_SERVER:$OPEN_PORT"
for target in "10.0.2.2 $CLOSED_PORT" "10.0.2.2 $OPEN_PORT" "$NFS_SERVER $CLOSED_PORT" "192.0.2.1 80" "1.1.1.1 443" "8.8.8.8 53"; do
  # shellcheck disable=SC2086
  if probe $target; then fail "the guest reached $target"; fi
  echo "unreachable: $target"
done
