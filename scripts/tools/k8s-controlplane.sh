#!/usr/bin/env bash
# A throw-away Kubernetes control plane on 127.0.0.1 for the operator's integration tests:
# etcd + kube-apiserver + kube-controller-manager (no scheduler, no kubelet: pods stay Pending and
# tests play the kubelet by patching pod status).
#
#   k8s-controlplane.sh start <state-dir>   builds/finds the binaries (k8s-tools.sh), generates a
#                                           PKI, starts everything, writes <state-dir>/env.sh
#   k8s-controlplane.sh stop <state-dir> [--rm]
#
# Needs curl, openssl and python3 (free ports) besides Go for the first build.
# Env for start: PRE_KCM_MANIFESTS (file or dir applied before kube-controller-manager starts: the
# garbage collector only learns new API types on a 30 s refresh, so CRDs applied later make the
# children of custom resources wait 30-45 s for collection), APISERVER_EXTRA_ARGS, KCM_EXTRA_ARGS.
# Traps this avoids: --advertise-address=127.0.0.1 needs --endpoint-reconciler-type=none; PVC
# binding waits for a 15 s resync unless --pvclaimbinder-sync-period is short.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?usage: k8s-controlplane.sh start|stop <state-dir>}
S=$(mkdir -p "${2:?state dir}" && cd "$2" && pwd)

if [[ $cmd == stop ]]; then
  # SIGTERM by recorded PID in reverse start order; SIGKILL after 10 s.
  tac "$S/pids" 2>/dev/null | while read -r name pid; do
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; echo "killed -9 $name ($pid)" >&2; fi
  done
  [[ ${3:-} == --rm ]] && rm -rf "$S"
  exit 0
fi
[[ $cmd == start ]] || { echo "k8s-controlplane.sh: unknown command $cmd" >&2; exit 2; }

tools=$("$HERE/k8s-tools.sh") || { echo "k8s-controlplane.sh: building the binaries failed (scripts/tools/k8s-tools.sh)" >&2; exit 1; }
eval "$tools"   # sets k8s= etcd= helm=
KBIN=$k8s; EBIN=$etcd
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
ETCD_PORT=$(free_port); ETCD_PEER_PORT=$(free_port); API_PORT=$(free_port); KCM_PORT=$(free_port)
SERVICE_CIDR=${SERVICE_CIDR:-10.0.0.0/24}
T0=$SECONDS
wait_for() {  # wait_for <what> <pid> <timeout-s> <cmd...>
  local what=$1 pid=$2 to=$3; shift 3
  for ((i = 0; i < to * 10; i++)); do
    "$@" >/dev/null 2>&1 && { echo "$what ready after $((SECONDS - T0))s" >&2; return 0; }
    kill -0 "$pid" 2>/dev/null || { echo "$what (pid $pid) exited; see $S/logs" >&2; tail -20 "$S/logs/$what.log" >&2 || true; return 1; }
    sleep 0.1
  done
  echo "timeout waiting for $what; see $S/logs" >&2; return 1
}
[[ -f $S/pki/ca.crt ]] || "$HERE/k8s-certs.sh" "$S/pki"
P=$S/pki
mkdir -p "$S/logs"
: > "$S/pids"

"$EBIN/etcd" --name=test --data-dir="$S/etcd-data" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="test=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true --log-level=warn >"$S/logs/etcd.log" 2>&1 &
ETCD_PID=$!; echo "etcd $ETCD_PID" >> "$S/pids"
wait_for etcd "$ETCD_PID" 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# shellcheck disable=SC2086
"$KBIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --secure-port="$API_PORT" \
  --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
  --client-ca-file="$P/ca.crt" --token-auth-file="$P/tokens.csv" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=RBAC --allow-privileged=true \
  ${APISERVER_EXTRA_ARGS:-} >"$S/logs/kube-apiserver.log" 2>&1 &
API_PID=$!; echo "kube-apiserver $API_PID" >> "$S/pids"

mkkc() {  # mkkc <file> <user> <cred flags...>
  local f=$1 u=$2; shift 2
  "$KBIN/kubectl" config --kubeconfig="$f" set-cluster local --server="https://127.0.0.1:$API_PORT" \
    --certificate-authority="$P/ca.crt" --embed-certs=true >/dev/null
  "$KBIN/kubectl" config --kubeconfig="$f" set-credentials "$u" "$@" >/dev/null
  "$KBIN/kubectl" config --kubeconfig="$f" set-context local --cluster=local --user="$u" >/dev/null
  "$KBIN/kubectl" config --kubeconfig="$f" use-context local >/dev/null
}
mkkc "$S/admin.kubeconfig" admin --client-certificate="$P/admin.crt" --client-key="$P/admin.key" --embed-certs=true
mkkc "$S/kcm.kubeconfig" kcm --client-certificate="$P/kcm.crt" --client-key="$P/kcm.key" --embed-certs=true
wait_for kube-apiserver "$API_PID" 180 curl -sf --cacert "$P/ca.crt" -H "Authorization: Bearer $(cat "$P/admin.token")" \
  "https://127.0.0.1:$API_PORT/readyz"

if [[ -n ${PRE_KCM_MANIFESTS:-} ]]; then
  "$KBIN/kubectl" --kubeconfig="$S/admin.kubeconfig" apply --server-side -f "$PRE_KCM_MANIFESTS" >/dev/null
  "$KBIN/kubectl" --kubeconfig="$S/admin.kubeconfig" wait --for=condition=Established crd --all --timeout=60s >/dev/null
  echo "pre-KCM manifests applied after $((SECONDS - T0))s" >&2
fi

# shellcheck disable=SC2086
"$KBIN/kube-controller-manager" \
  --kubeconfig="$S/kcm.kubeconfig" \
  --authentication-kubeconfig="$S/kcm.kubeconfig" --authorization-kubeconfig="$S/kcm.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
  --controllers='*' --use-service-account-credentials=true \
  --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --pvclaimbinder-sync-period=1s \
  ${KCM_EXTRA_ARGS:-} >"$S/logs/kube-controller-manager.log" 2>&1 &
KCM_PID=$!; echo "kube-controller-manager $KCM_PID" >> "$S/pids"
wait_for kube-controller-manager "$KCM_PID" 120 curl -sfk "https://127.0.0.1:$KCM_PORT/healthz"
# Pods can only be created once the serviceaccount controller made the "default" ServiceAccount.
wait_for kube-controller-manager "$KCM_PID" 120 "$KBIN/kubectl" --kubeconfig="$S/admin.kubeconfig" get serviceaccount default -n default

cat > "$S/env.sh" <<ENV
export KUBECONFIG=$S/admin.kubeconfig
export API_SERVER=https://127.0.0.1:$API_PORT
export API_PORT=$API_PORT ETCD_PORT=$ETCD_PORT KCM_PORT=$KCM_PORT
export ETCD_PID=$ETCD_PID API_PID=$API_PID KCM_PID=$KCM_PID
export K8S_BIN=$KBIN HELM_BIN=$helm/helm KUBECTL=$KBIN/kubectl
ENV
echo "control plane up in $((SECONDS - T0))s: $S/env.sh" >&2
