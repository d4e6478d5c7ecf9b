/**
 * What the server Deployment and the password-change Jobs share: the container's environment
 * (the server's configuration contract), mounts, security context and scheduling.
 */
import { HTTP_PORT, NFS_PORT, SECRET_KEY_ACTIVE, SECRET_KEY_PENDING, SERVER_UID } from "../api/constants.ts";
import { quantityBytes } from "../api/quantity.ts";
import type { NormalizedSpec } from "../api/spec.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import { passwordSecretName } from "./names.ts";

export const CACHE_DIR = "/var/cache/zerofs";
export const PASSWORD_DIR = "/var/run/zerofs/password";
export const ACTIVE_PASSWORD_FILE = `${PASSWORD_DIR}/${SECRET_KEY_ACTIVE}`;
export const PENDING_PASSWORD_FILE = `${PASSWORD_DIR}/${SECRET_KEY_PENDING}`;
/** The server uses this share of the cache claim, leaving room for filesystem overhead and temp files. */
export const CACHE_FILL_RATIO = 0.9;

export type EnvVar =
  | { name: string; value: string }
  | { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } };

/** SLATEDB_CACHE_SIZE_GB for a claim of `size`: 90%, in GiB, two decimals, at least 0.01. */
export function cacheSizeGb(size: string | number): string {
  const gib = (quantityBytes(size, "spec.cache.size") * CACHE_FILL_RATIO) / 2 ** 30;
  return String(Math.max(0.01, Math.floor(gib * 100) / 100));
}

export interface EnvOptions {
  /** Password file the server opens the store with. */
  passwordFile: string;
  /** Set for the password-change Job: the server re-wraps the key with this password and exits. */
  newPasswordFile?: string;
  cacheSizeGb: string;
  /** ZEROFS_ALLOWED_CLIENTS (effectiveAllowedCIDRs: never empty). */
  allowedClients: string[];
  /** ZEROFS_HTTP_ALLOWED_CLIENTS. */
  httpAllowedClients: string[];
}

/** The server's environment, in a stable order (a reordered list would be a spurious Deployment change). */
export function serverEnv(spec: NormalizedSpec, o: EnvOptions): EnvVar[] {
  const env: EnvVar[] = [
    { name: "SLATEDB_CACHE_DIR", value: CACHE_DIR },
    { name: "SLATEDB_CACHE_SIZE_GB", value: o.cacheSizeGb },
    { name: "ZEROFS_ENCRYPTION_PASSWORD_FILE", value: o.passwordFile },
  ];
  if (o.newPasswordFile) env.push({ name: "ZEROFS_NEW_PASSWORD_FILE", value: o.newPasswordFile });
  if (spec.storage.endpoint) env.push({ name: "AWS_ENDPOINT_URL", value: spec.storage.endpoint });
  env.push({ name: "AWS_DEFAULT_REGION", value: spec.storage.region });
  env.push({ name: "AWS_ALLOW_HTTP", value: String(spec.storage.allowHttp) });
  const creds = spec.storage.credentialsSecretRef;
  if (creds) {
    env.push({ name: "AWS_ACCESS_KEY_ID", valueFrom: { secretKeyRef: { name: creds.name, key: creds.accessKeyIdKey } } });
    env.push({ name: "AWS_SECRET_ACCESS_KEY", valueFrom: { secretKeyRef: { name: creds.name, key: creds.secretAccessKeyKey } } });
  }
  // The server listens on the pod's address, so it must be told whom to serve: the client list is
  // always explicit (the server refuses a non-loopback listener without one), the HTTP endpoint
  // (probes from the node's kubelet, scrapers) has its own. The NetworkPolicy narrows both again.
  env.push(
    { name: "ZEROFS_LISTEN", value: "0.0.0.0" },
    { name: "ZEROFS_NFS_PORT", value: String(NFS_PORT) },
    { name: "ZEROFS_ALLOWED_CLIENTS", value: o.allowedClients.join(",") },
    { name: "ZEROFS_INSECURE", value: String(spec.nfs.insecure) },
    { name: "ZEROFS_HTTP_LISTEN", value: "0.0.0.0" },
    { name: "ZEROFS_HTTP_PORT", value: String(HTTP_PORT) },
    { name: "ZEROFS_HTTP_ALLOWED_CLIENTS", value: o.httpAllowedClients.join(",") },
  );
  env.push(
    { name: "ZEROFS_SQUASH", value: spec.nfs.squash },
    { name: "ZEROFS_ANON_UID", value: String(spec.nfs.anonUID) },
    { name: "ZEROFS_ANON_GID", value: String(spec.nfs.anonGID) },
    { name: "ZEROFS_READ_ONLY", value: String(spec.nfs.readOnly) },
  );
  if (spec.capacity !== undefined) env.push({ name: "ZEROFS_CAPACITY_BYTES", value: String(quantityBytes(spec.capacity, "spec.capacity")) });
  env.push({ name: "ZEROFS_LOG_LEVEL", value: spec.server.logLevel });
  return env;
}

export function podSecurityContext(): Record<string, unknown> {
  return {
    runAsNonRoot: true,
    runAsUser: SERVER_UID,
    runAsGroup: SERVER_UID,
    fsGroup: SERVER_UID,
    fsGroupChangePolicy: "OnRootMismatch",
    seccompProfile: { type: "RuntimeDefault" },
    // NFS clients mount with port=2049: let the non-root server bind it. This sysctl is in the
    // "safe" set (allowed by the kubelet by default and by the baseline/restricted Pod Security
    // levels), unlike NET_BIND_SERVICE, which a non-root process does not even receive.
    sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: String(NFS_PORT) }],
  };
}

export function containerSecurityContext(): Record<string, unknown> {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
  };
}

/**
 * Mounts of every zerofs container (server and password-change Jobs): the password files, the
 * cache, and a writable /tmp beside the read-only root filesystem.
 */
export function serverVolumeMounts(): Record<string, unknown>[] {
  return [
    { name: "password", mountPath: PASSWORD_DIR, readOnly: true },
    { name: "cache", mountPath: CACHE_DIR },
    { name: "tmp", mountPath: "/tmp" },
  ];
}

/**
 * The operator's password Secret mounted read-only; `keys` picks which entries are files. Mode
 * 0400: no one but the owner. The kubelet owns Secret files as root and, because the pod sets
 * fsGroup (the cache claim needs it), adds group read for the fsGroup: the server (uid and gid
 * 65532) reads the file through its own group, and no other uid or gid can.
 */
export function passwordVolume(v: Pick<ZeroFSVolume, "metadata">, keys: string[]): Record<string, unknown> {
  return {
    name: "password",
    secret: { secretName: passwordSecretName(v), defaultMode: 0o400, items: keys.map((k) => ({ key: k, path: k })) },
  };
}

export function scheduling(spec: NormalizedSpec): Record<string, unknown> {
  const s: Record<string, unknown> = {};
  if (spec.server.nodeSelector) s.nodeSelector = spec.server.nodeSelector;
  if (spec.server.tolerations) s.tolerations = spec.server.tolerations;
  if (spec.server.affinity) s.affinity = spec.server.affinity;
  if (spec.server.priorityClassName) s.priorityClassName = spec.server.priorityClassName;
  return s;
}

/** A memory limit keeps a misbehaving server (or a hostile client's load) from starving its node. */
export const DEFAULT_MEMORY_LIMIT = "2Gi";
export const DEFAULT_RESOURCES = { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: DEFAULT_MEMORY_LIMIT } };

/**
 * spec.server.resources, always with a memory limit: the user's limits.memory, else the larger of
 * the default and requests.memory (a limit below the request would be rejected).
 */
export function serverResources(spec: NormalizedSpec): Record<string, unknown> {
  const r = spec.server.resources as { requests?: Record<string, string | number>; limits?: Record<string, string | number> } | undefined;
  if (!r) return DEFAULT_RESOURCES;
  if (r.limits?.memory !== undefined) return r;
  const req = r.requests?.memory;
  const limit = req !== undefined && quantityBytes(req, "spec.server.resources.requests.memory") > quantityBytes(DEFAULT_MEMORY_LIMIT) ? req : DEFAULT_MEMORY_LIMIT;
  return { ...r, limits: { ...r.limits, memory: limit } };
}
