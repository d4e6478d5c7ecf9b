#!/usr/bin/env bash
# Generate a throw-away PKI for a local test control plane.
# Usage: k8s-certs.sh <dir>   (used by k8s-controlplane.sh)
set -euo pipefail
D=${1:?pki dir}; mkdir -p "$D"; cd "$D"
exec 3>&2 2>openssl.log   # openssl is chatty on stderr
days=3650
# Cluster CA (signs the serving cert and the client certs; KCM also signs CSRs with it)
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days $days -subj "/CN=local-test-ca"
sign() {  # sign <name> <subject> <extfile-content>
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days $days -out "$1.crt" -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}
# API server serving cert: 127.0.0.1/localhost plus the in-cluster names and the first service IP,
# and APISERVER_EXTRA_SANS (comma-separated, e.g. "IP:10.0.2.100": the address a test VM's node
# reaches the API server at).
sign apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local${APISERVER_EXTRA_SANS:+,$APISERVER_EXTRA_SANS}"
CLIENT_EXT="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
# admin user (group system:masters = cluster-admin via RBAC bootstrap policy)
sign admin "/O=system:masters/CN=admin" "$CLIENT_EXT"
# kube-controller-manager identity (bound to the system:kube-controller-manager ClusterRole)
sign kcm "/CN=system:kube-controller-manager" "$CLIENT_EXT"
# Service-account token signing key pair
openssl genrsa -out sa.key 2048
openssl rsa -in sa.key -pubout -out sa.pub
# Static bearer token for the admin user (token,user,uid,"group1,group2")
ADMIN_TOKEN=$(openssl rand -hex 24)
echo "${ADMIN_TOKEN},admin-token-user,admin-token-uid,\"system:masters\"" > tokens.csv
echo -n "$ADMIN_TOKEN" > admin.token
chmod 600 ./*.key tokens.csv admin.token
exec 2>&3
