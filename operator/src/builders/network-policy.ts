/**
 * The volume's NetworkPolicy: ingress to the server pods only on
 *  - NFS (2049/TCP) from the allowed client networks (ipBlocks: the kubelets on every node mount
 *    from the node network, through the ClusterIP, so the server sees node addresses) and from
 *    spec.networkPolicy.nfsFrom (e.g. pods with a user-space client);
 *  - metrics (9090/TCP) only from the peers the operator (chart networkPolicy.metricsFrom) and the
 *    volume (spec.networkPolicy.metricsFrom) name; no rule at all when neither names any;
 *  - the admin API (9090/TCP, bearer token) from the operator's own pods (ADMIN_FROM, set by the
 *    chart), which creates and sizes the claim directories of shared StorageClass volumes.
 * The kubelet's probes come from the pod's own node, which NetworkPolicies always admit. Egress is
 * not restricted: the server needs its object store, wherever that is.
 */
import { HTTP_PORT, NFS_PORT } from "../api/constants.ts";
import type { NormalizedSpec } from "../api/spec.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { NetworkPolicy } from "../kube/types.ts";
import { commonLabels, ownerReference, serverSelector } from "./labels.ts";
import { serverName } from "./names.ts";

export interface NetworkPolicyInput {
  /** effectiveAllowedCIDRs: never empty (an ingress rule without peers would admit everyone). */
  allowedClients: string[];
  /** The operator's metrics peers, for every volume. */
  metricsFrom: Record<string, unknown>[];
  /** The operator's pods: the admin API (claim directories) on the HTTP port. */
  adminFrom?: Record<string, unknown>[];
}

export function buildNetworkPolicy(v: ZeroFSVolume, spec: NormalizedSpec, i: NetworkPolicyInput): NetworkPolicy {
  if (i.allowedClients.length === 0) throw new Error(`${v.metadata.namespace}/${v.metadata.name}: no NFS client networks: refusing a NetworkPolicy rule that would admit everyone`);
  const ingress: NetworkPolicy["spec"]["ingress"] = [
    {
      ports: [{ protocol: "TCP", port: NFS_PORT }],
      from: [...i.allowedClients.map((cidr) => ({ ipBlock: { cidr } })), ...spec.networkPolicy.nfsFrom],
    },
  ];
  const metricsFrom = [...i.metricsFrom, ...spec.networkPolicy.metricsFrom];
  if (metricsFrom.length > 0) ingress.push({ ports: [{ protocol: "TCP", port: HTTP_PORT }], from: metricsFrom });
  // A rule of its own (not merged into the metrics peers): the admin API needs its bearer token too.
  if (i.adminFrom && i.adminFrom.length > 0) ingress.push({ ports: [{ protocol: "TCP", port: HTTP_PORT }], from: i.adminFrom });
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: serverName(v), namespace: v.metadata.namespace, labels: commonLabels(v, "server"), ownerReferences: [ownerReference(v)] },
    spec: { podSelector: { matchLabels: serverSelector(v) }, policyTypes: ["Ingress"], ingress },
  };
}
