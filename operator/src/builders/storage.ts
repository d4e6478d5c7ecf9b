/** Claims and volumes: the server's cache claim, the NFS PersistentVolume and the consumers' claim. */
import type { NormalizedSpec } from "../api/spec.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { PersistentVolume, PersistentVolumeClaim } from "../kube/types.ts";
import { commonLabels, ownerReference } from "./labels.ts";
import { cacheClaimName, consumerClaim, persistentVolumeName } from "./names.ts";

export function buildCacheClaim(v: ZeroFSVolume, spec: NormalizedSpec): PersistentVolumeClaim {
  const pvcSpec: PersistentVolumeClaim["spec"] = {
    accessModes: ["ReadWriteOnce"],
    volumeMode: "Filesystem",
    resources: { requests: { storage: String(spec.cache.size) } },
  };
  if (spec.cache.storageClassName !== undefined) pvcSpec.storageClassName = spec.cache.storageClassName;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: cacheClaimName(v, spec), namespace: v.metadata.namespace, labels: commonLabels(v, "cache"), ownerReferences: [ownerReference(v)] },
    spec: pvcSpec,
  };
}

/** Capacity shown on the PV and its claim (NFS ignores it; schedulers and humans read it). */
export function volumeCapacity(spec: NormalizedSpec): string {
  return String(spec.persistentVolume.capacity ?? spec.capacity ?? "1Ti");
}

/**
 * The NFS PersistentVolume. `server` is the Service's ClusterIP, never its DNS name: the kubelet
 * mounts from the node's network namespace with the node's resolver, which does not know
 * cluster DNS names. Pre-bound (claimRef) to the consumers' claim so no other claim can take it.
 * Cluster-scoped, so no owner reference: the finalizer deletes it.
 */
export function buildPersistentVolume(v: ZeroFSVolume, spec: NormalizedSpec, clusterIP: string): PersistentVolume {
  const pvSpec: PersistentVolume["spec"] = {
    capacity: { storage: volumeCapacity(spec) },
    accessModes: ["ReadWriteMany"],
    volumeMode: "Filesystem",
    persistentVolumeReclaimPolicy: spec.persistentVolume.reclaimPolicy,
    // No storageClassName: "" is the PV's default (no class), matched by the claim's explicit "".
    mountOptions: spec.persistentVolume.mountOptions,
    nfs: { server: clusterIP, path: "/" },
  };
  // readOnly is omitempty in the API: a false would never read back, and look like drift forever.
  if (spec.nfs.readOnly) pvSpec.nfs = { ...pvSpec.nfs!, readOnly: true };
  if (spec.persistentVolume.claim.create) {
    const c = consumerClaim(v, spec);
    pvSpec.claimRef = { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: c.namespace, name: c.name };
  }
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name: persistentVolumeName(v), labels: commonLabels(v, "nfs-volume") },
    spec: pvSpec,
  };
}

/**
 * The claim consumers mount, bound to the PV by volumeName. An owner reference only when it lives
 * in the volume's namespace (owner references cannot cross namespaces).
 * `existingStorage`: a claim's request cannot shrink, and without an expandable class cannot grow
 * either, so once created the claim keeps its request.
 */
export function buildConsumerClaim(v: ZeroFSVolume, spec: NormalizedSpec, existingStorage?: string): PersistentVolumeClaim {
  const c = consumerClaim(v, spec);
  const metadata: PersistentVolumeClaim["metadata"] = { name: c.name, namespace: c.namespace, labels: commonLabels(v, "nfs-claim") };
  if (c.namespace === v.metadata.namespace) metadata.ownerReferences = [ownerReference(v)];
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata,
    spec: {
      accessModes: ["ReadWriteMany"],
      volumeMode: "Filesystem",
      storageClassName: "",
      volumeName: persistentVolumeName(v),
      resources: { requests: { storage: existingStorage ?? volumeCapacity(spec) } },
    },
  };
}
