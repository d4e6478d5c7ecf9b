/**
 * The ZeroFSVolume resource as the API server stores it (zerofs.io/v1alpha1). The OpenAPI schema
 * in crd/schema.ts is the contract users see; spec.ts validates and defaults these types at run
 * time with the same DEFAULTS, so a volume read from an older CRD still gets sane values.
 */
import type { KubeObject, ObjectMeta, OwnerReference } from "../kube/types.ts";

export type DeletionPolicy = "Retain" | "Delete";
export type Squash = "none" | "root" | "all";
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal";
export type ReclaimPolicy = "Retain" | "Delete";

export interface SecretKeyRef {
  name: string;
  key?: string;
}

export interface CredentialsSecretRef {
  name: string;
  accessKeyIdKey?: string;
  secretAccessKeyKey?: string;
}

export interface ZeroFSVolumeSpec {
  storage: {
    url: string;
    endpoint?: string;
    region?: string;
    allowHttp?: boolean;
    credentialsSecretRef?: CredentialsSecretRef;
  };
  encryption: { passwordSecretRef: SecretKeyRef };
  cache?: { size?: string | number; storageClassName?: string };
  server?: {
    image?: string;
    imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
    resources?: Record<string, unknown>;
    nodeSelector?: Record<string, string>;
    tolerations?: Record<string, unknown>[];
    affinity?: Record<string, unknown>;
    podLabels?: Record<string, string>;
    podAnnotations?: Record<string, string>;
    logLevel?: LogLevel;
    priorityClassName?: string;
  };
  nfs?: {
    allowedCIDRs?: string[];
    squash?: Squash;
    insecure?: boolean;
    anonUID?: number;
    anonGID?: number;
    readOnly?: boolean;
  };
  networkPolicy?: {
    nfsFrom?: Record<string, unknown>[];
    metricsFrom?: Record<string, unknown>[];
  };
  persistentVolume?: {
    create?: boolean;
    mountOptions?: string[];
    capacity?: string | number;
    reclaimPolicy?: ReclaimPolicy;
    claim?: { create?: boolean; name?: string; namespace?: string };
  };
  capacity?: string | number;
  deletionPolicy?: DeletionPolicy;
}

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type Phase = "Pending" | "Provisioning" | "Ready" | "Rotating" | "Degraded" | "Deleting";

export interface PasswordRotationStatus {
  /** Idle | Pending | StoppingServer | Changing | Verifying | Succeeded | Failed */
  phase: string;
  targetHash?: string;
  startedAt?: string;
  jobName?: string;
  message?: string;
  lastFailedHash?: string;
}

/**
 * The last `kubectl zerofs check`: a Job that mounted the volume's claim and ran a short
 * write/read/verify and metadata workload. Written by the plugin (its own field manager), never
 * by the operator, whose status applies leave it alone.
 */
export interface VolumeCheckStatus {
  /** Passed | Failed */
  result: string;
  time: string;
  jobName?: string;
  message?: string;
  bytes?: number;
  files?: number;
  writeMiBPerSecond?: number;
  readMiBPerSecond?: number;
  metadataOps?: number;
  metadataOpsPerSecond?: number;
  seconds?: number;
}

export interface ZeroFSVolumeStatus {
  observedGeneration?: number;
  phase?: Phase;
  message?: string;
  conditions?: Condition[];
  server?: { clusterIP?: string; port?: number; path?: string; serviceName?: string };
  mountOptions?: string[];
  persistentVolumeName?: string;
  persistentVolumeClaim?: { namespace: string; name: string };
  activePasswordHash?: string;
  passwordRotation?: PasswordRotationStatus;
  /** Shared-mode claims (written by the provisioner with its own field manager). */
  claims?: ClaimStatus[];
  check?: VolumeCheckStatus;
}

export interface ClaimStatus {
  namespace: string;
  name: string;
  persistentVolume?: string;
  directory?: string;
  quotaBytes?: number;
  usedBytes?: number;
  usedInodes?: number;
}

export interface ZeroFSVolume extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { name: string; namespace: string; uid: string };
  spec: ZeroFSVolumeSpec;
  status?: ZeroFSVolumeStatus;
}

export type { OwnerReference };
