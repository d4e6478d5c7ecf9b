/** The server Deployment: one replica, strategy Recreate (the store has exactly one writer). */
import { ANN_CREDENTIALS_DIGEST, ANN_PASSWORD_HASH, HTTP_PORT, NFS_PORT, SECRET_KEY_ACTIVE } from "../api/constants.ts";
import type { NormalizedSpec } from "../api/spec.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { Deployment } from "../kube/types.ts";
import { commonLabels, ownerReference, serverSelector } from "./labels.ts";
import { ADMIN_TOKEN_DIR, ADMIN_TOKEN_FILE, adminTokenVolume } from "./admin-token.ts";
import { serverName } from "./names.ts";
import {
  ACTIVE_PASSWORD_FILE,
  cacheSizeGb,
  containerSecurityContext,
  passwordVolume,
  podSecurityContext,
  scheduling,
  serverEnv,
  serverResources,
  serverVolumeMounts,
} from "./server-pod.ts";

export interface DeploymentInput {
  volume: ZeroFSVolume;
  spec: NormalizedSpec;
  /** spec.server.image, else the operator's default. */
  image: string;
  cacheClaimName: string;
  /** 0 while a password change runs (the store must have no writer), else 1. */
  replicas: 0 | 1;
  /** Hash of the active password: a change restarts the server with the new password file. */
  passwordHash: string;
  /** Digest of the S3 credentials: a change restarts the server with the new keys. */
  credentialsDigest?: string;
  /** Client lists for the server's NFS and HTTP listeners (see serverEnv). */
  network: { allowedClients: string[]; httpAllowedClients: string[] };
}

export function buildDeployment(i: DeploymentInput): Deployment {
  const { volume: v, spec } = i;
  const labels = { ...commonLabels(v, "server") };
  const podAnnotations: Record<string, string> = {
    ...spec.server.podAnnotations,
    [ANN_PASSWORD_HASH]: i.passwordHash,
  };
  if (i.credentialsDigest) podAnnotations[ANN_CREDENTIALS_DIGEST] = i.credentialsDigest;
  const container: Record<string, unknown> = {
    name: "zerofs",
    image: i.image,
    command: ["zerofs"],
    args: [spec.storage.url],
    // The admin API (claim directories of the StorageClass provisioner's shared mode) is on for
    // every server the operator runs, reachable only with the operator's per-volume token.
    env: [...serverEnv(spec, { passwordFile: ACTIVE_PASSWORD_FILE, cacheSizeGb: cacheSizeGb(spec.cache.size), ...i.network }), { name: "ZEROFS_ADMIN_TOKEN_FILE", value: ADMIN_TOKEN_FILE }],
    ports: [
      { name: "nfs", containerPort: NFS_PORT, protocol: "TCP" },
      { name: "http", containerPort: HTTP_PORT, protocol: "TCP" },
    ],
    // Opening the store (fetching the manifest, replaying the WAL) can take a while on a cold
    // cache: the startup probe gives it 5 minutes before liveness starts counting.
    startupProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 5, failureThreshold: 60, timeoutSeconds: 3 },
    // Liveness only catches a server that is really stuck: a restart drops every client's
    // connection and reopens the store, which makes a CPU-starved node worse. On the test node
    // (e2e/node) a busy 2-vCPU node let /healthz miss 3 × 5 s and the kubelet restarted a healthy
    // server; 6 × 10 s means a minute without any answer.
    livenessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 10, failureThreshold: 6, timeoutSeconds: 10 },
    readinessProbe: { httpGet: { path: "/readyz", port: "http" }, periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 3 },
    resources: serverResources(spec),
    securityContext: containerSecurityContext(),
    terminationMessagePolicy: "FallbackToLogsOnError",
    volumeMounts: [...serverVolumeMounts(), { name: "admin-token", mountPath: ADMIN_TOKEN_DIR, readOnly: true }],
  };
  if (spec.server.imagePullPolicy) container.imagePullPolicy = spec.server.imagePullPolicy;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: serverName(v), namespace: v.metadata.namespace, labels, ownerReferences: [ownerReference(v)] },
    spec: {
      replicas: i.replicas,
      // Recreate: the old server stops before the new one starts, so two servers never write the
      // store at once (the store's fencing would stop the old one, but only after a failed write).
      strategy: { type: "Recreate" },
      revisionHistoryLimit: 3,
      selector: { matchLabels: serverSelector(v) },
      template: {
        metadata: { labels: { ...spec.server.podLabels, ...commonLabels(v, "server") }, annotations: podAnnotations },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // Time to flush the WAL and close the store cleanly on SIGTERM.
          terminationGracePeriodSeconds: 60,
          securityContext: podSecurityContext(),
          containers: [container],
          volumes: [
            passwordVolume(v, [SECRET_KEY_ACTIVE]),
            { name: "cache", persistentVolumeClaim: { claimName: i.cacheClaimName } },
            { name: "tmp", emptyDir: {} },
            adminTokenVolume(v),
          ],
          ...scheduling(spec),
        },
      },
    },
  };
}
