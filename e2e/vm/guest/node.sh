# A Kubernetes node (e2e/node/): containerd + kubelet + kube-proxy + CNI bridge, talking to the
# API server on the host through the forwarded NFS_SERVER:API_PORT. The harness writes the
# configuration files into /run/job and exports the binaries' folders (KUBENODE_BIN,
# CONTAINERD_BIN, RUNC_BIN, CNI_BIN); /dev/vda is an ext4 disk holding containerd's root with the
# images already imported on the host (importing in the TCG guest is ~35x slower). Each daemon logs to
# /run/job/logs/<name>.log, which the host reads while the VM runs. The node runs until the host
# signals "stop".
L=/run/job/logs
mkdir -p $L /tmp/node
export PATH="$CONTAINERD_BIN:$KUBENODE_BIN:$PATH"

# cgroup v2 only (the Debian kernel has both; nothing mounted v1 here), controllers for the pods.
mount -t cgroup2 none /sys/fs/cgroup
for c in cpuset cpu io memory hugetlb pids; do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || echo "node: cgroup controller $c unavailable"
done
# The host root is read-only: /var gets a writable overlay (libcni's cache is /var/lib/cni,
# mount.nfs wants /var/lib/nfs); everything else is configured under /tmp/node and /run.
mkdir -p /tmp/node/var-up /tmp/node/var-work
mount -t overlay overlay -o lowerdir=/var,upperdir=/tmp/node/var-up,workdir=/tmp/node/var-work /var
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
ip link set lo up

mkdir -p /tmp/node/cni/net.d
# Folders for the tests' local PersistentVolumes (the cache claims of the servers).
mkdir -p /tmp/node/pv/cache-1 /tmp/node/pv/cache-2 /tmp/node/pv/cache-3
cp /run/job/10-bridge.conflist /tmp/node/cni/net.d/
mkdir -p /tmp/node/containerd
mount -t ext4 /dev/vda /tmp/node/containerd
containerd --config /run/job/containerd.toml > $L/containerd.log 2>&1 &
for _ in $(seq 300); do [[ -S /run/containerd/containerd.sock ]] && break; sleep 0.2; done
[[ -S /run/containerd/containerd.sock ]] || { tail -30 $L/containerd.log; fail "containerd did not start"; }
echo "NODE containerd up"
ctr -n k8s.io images ls -q
kubelet --config=/run/job/kubelet.yaml --kubeconfig=/run/job/kubelet.kubeconfig \
  --hostname-override="$NODE_NAME" --node-ip=10.0.2.15 --root-dir=/tmp/node/kubelet --v="${KUBELET_V:-1}" > $L/kubelet.log 2>&1 &
kube-proxy --config=/run/job/kube-proxy.yaml --v=1 > $L/kube-proxy.log 2>&1 &
echo "NODE-STARTED"
wait_host stop 7200
echo "NODE stopping"
