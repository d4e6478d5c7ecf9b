/**
 * The server Service. It is applied in place and never deleted by the operator: the NFS
 * PersistentVolume points at its ClusterIP, and a PV's NFS server cannot be changed.
 */
import { HTTP_PORT, NFS_PORT } from "../api/constants.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { Service } from "../kube/types.ts";
import { commonLabels, ownerReference, serverSelector } from "./labels.ts";
import { serverName } from "./names.ts";

/**
 * `preferredClusterIP`: the IP recorded in status when the Service must be created again (someone
 * deleted it). Asking for the same IP keeps an existing PersistentVolume valid. Only used on
 * create: spec.clusterIP is immutable afterwards.
 */
export function buildService(v: ZeroFSVolume, preferredClusterIP?: string): Service {
  const spec: Service["spec"] = {
    type: "ClusterIP",
    selector: serverSelector(v),
    ports: [
      { name: "nfs", port: NFS_PORT, targetPort: "nfs", protocol: "TCP" },
      { name: "http", port: HTTP_PORT, targetPort: "http", protocol: "TCP" },
    ],
  };
  if (preferredClusterIP) spec.clusterIP = preferredClusterIP;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: serverName(v), namespace: v.metadata.namespace, labels: commonLabels(v, "server"), ownerReferences: [ownerReference(v)] },
    spec,
  };
}
