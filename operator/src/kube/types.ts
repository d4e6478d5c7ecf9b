/**
 * Minimal structural types for the Kubernetes objects the operator reads and writes. The
 * operator builds plain JSON and talks to the API with its own small client (kube/client.ts), so
 * it only needs the fields it touches; everything else stays `unknown`-typed and passes through.
 */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

/** Any Kubernetes object: apiVersion/kind/metadata plus whatever else. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** The object as a `ns/name` (or `name` for cluster-scoped objects) string for messages and queue keys. */
export function objectKey(o: { metadata: ObjectMeta }): string {
  const ns = o.metadata.namespace;
  return ns ? `${ns}/${o.metadata.name ?? ""}` : (o.metadata.name ?? "");
}

export interface Secret extends KubeObject {
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export interface DeploymentCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface Deployment extends KubeObject {
  spec: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> };
    template?: { metadata?: ObjectMeta; spec?: Record<string, unknown> };
    [field: string]: unknown;
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    updatedReplicas?: number;
    unavailableReplicas?: number;
    conditions?: DeploymentCondition[];
  };
}

export interface Service extends KubeObject {
  spec: { clusterIP?: string; ports?: { name?: string; port: number; [field: string]: unknown }[]; [field: string]: unknown };
}

export interface PersistentVolumeClaim extends KubeObject {
  spec: {
    volumeName?: string;
    storageClassName?: string;
    resources?: { requests?: Record<string, string> };
    [field: string]: unknown;
  };
  status?: { phase?: string };
}

export interface PersistentVolume extends KubeObject {
  spec: {
    nfs?: { server: string; path: string; readOnly?: boolean };
    claimRef?: { apiVersion?: string; kind?: string; namespace?: string; name?: string; uid?: string };
    [field: string]: unknown;
  };
  status?: { phase?: string };
}

export interface NetworkPolicyRule {
  ports?: { protocol?: string; port?: number | string }[];
  from?: Record<string, unknown>[];
}

export interface NetworkPolicy extends KubeObject {
  spec: { podSelector: { matchLabels?: Record<string, string> }; policyTypes?: string[]; ingress?: NetworkPolicyRule[]; [field: string]: unknown };
}

export interface JobCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface Job extends KubeObject {
  spec: Record<string, unknown>;
  status?: {
    active?: number;
    succeeded?: number;
    failed?: number;
    conditions?: JobCondition[];
  };
}

export interface PodVolume {
  name: string;
  persistentVolumeClaim?: { claimName: string };
  nfs?: { server: string; path: string };
  [field: string]: unknown;
}

export interface ContainerStatus {
  name: string;
  state?: { terminated?: { exitCode: number; reason?: string; message?: string } };
  lastState?: { terminated?: { exitCode: number; reason?: string; message?: string } };
}

export interface Pod extends KubeObject {
  spec: { volumes?: PodVolume[]; nodeName?: string; [field: string]: unknown };
  status?: { phase?: string; containerStatuses?: ContainerStatus[]; [field: string]: unknown };
}

export interface Lease extends KubeObject {
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}
