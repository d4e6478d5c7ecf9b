/**
 * The operator's configuration, from the environment (the chart sets these). Every bad value is
 * reported by variable name with what was expected.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { z } from "zod";
import { DEFAULT_NETWORK, PRIVATE_CIDRS, type NetworkDefaults, type VolumePolicy } from "./api/policy.ts";
import { isCidr } from "./api/spec.ts";

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** Comma-separated list; blanks dropped. */
const list = z.string().transform((v) => v.split(",").map((x) => x.trim()).filter((x) => x !== ""));
const cidrList = list.refine((l) => l.length > 0 && l.every(isCidr), "expected a non-empty comma-separated list of CIDRs (10.0.0.0/8,fd00::/8)");
const peers = z.string().transform((v, ctx) => {
  try {
    const x: unknown = JSON.parse(v);
    if (Array.isArray(x) && x.every((p) => typeof p === "object" && p !== null && !Array.isArray(p))) return x as Record<string, unknown>[];
  } catch {
    // reported below
  }
  ctx.addIssue({ code: "custom", message: "expected a JSON array of NetworkPolicyPeer objects" });
  return z.NEVER;
});

const schema = z.object({
  ZEROFS_SERVER_IMAGE: z.string().min(1).default("zerofs/zerofs:0.1.0"),
  WATCH_NAMESPACE: z.string().default(""),
  POD_NAMESPACE: z.string().optional(),
  POD_NAME: z.string().optional(),
  LEADER_ELECT: bool.default(true),
  LEASE_NAME: z.string().min(1).default("zerofs-operator"),
  LEASE_DURATION_SECONDS: int(2, 3600).default(15),
  RENEW_DEADLINE_SECONDS: int(1, 3600).default(10),
  RETRY_PERIOD_SECONDS: int(1, 600).default(2),
  HTTP_ADDRESS: z.string().default("0.0.0.0"),
  HTTP_PORT: int(0, 65535).default(8080),
  WORKERS: int(1, 64).default(2),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
  DELETION_POLL_SECONDS: int(1, 3600).default(5),
  SHUTDOWN_TIMEOUT_SECONDS: int(1, 3600).default(25),
  PASSWORD_JOB_BACKOFF_LIMIT: int(0, 10).default(2),
  DEFAULT_ALLOWED_CIDRS: cidrList.default(PRIVATE_CIDRS),
  HTTP_ALLOWED_CIDRS: cidrList.default(PRIVATE_CIDRS),
  NETWORK_POLICY: bool.default(true),
  METRICS_FROM: peers.default([]),
  ADMIN_FROM: peers.default([]),
  PROVISIONER: bool.default(true),
  USAGE_REFRESH_SECONDS: int(5, 86400).default(60),
  ALLOW_CROSS_NAMESPACE_CLAIMS: bool.default(false),
  ALLOWED_SERVER_IMAGES: list.default([]),
  ALLOW_TOLERATIONS: bool.default(false),
  ALLOW_NODE_PLACEMENT: bool.default(true),
  ALLOWED_PRIORITY_CLASSES: list.default([]),
});

export interface OperatorConfig {
  serverImage: string;
  watchNamespace: string | undefined;
  leaseNamespace: string;
  identity: string;
  leaderElect: boolean;
  leaseName: string;
  leaseDurationSeconds: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  httpAddress: string;
  httpPort: number;
  workers: number;
  logLevel: string;
  deletionPollMs: number;
  shutdownTimeoutMs: number;
  jobBackoffLimit: number;
  network: NetworkDefaults;
  policy: VolumePolicy;
  /** Run the StorageClass provisioner (zerofs.io/nfs). */
  provisioner: boolean;
  /** How often claim usage is read from the servers. */
  usageRefreshMs: number;
}

export class ConfigError extends Error {}

const SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

export function loadConfig(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const r = schema.safeParse(env);
  if (!r.success) {
    throw new ConfigError(`invalid configuration: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  const e = r.data;
  if (e.WATCH_NAMESPACE && e.ALLOW_CROSS_NAMESPACE_CLAIMS) {
    throw new ConfigError("invalid configuration: ALLOW_CROSS_NAMESPACE_CLAIMS needs an operator that watches all namespaces (WATCH_NAMESPACE is set)");
  }
  if (e.RENEW_DEADLINE_SECONDS >= e.LEASE_DURATION_SECONDS) {
    throw new ConfigError(`invalid configuration: RENEW_DEADLINE_SECONDS (${e.RENEW_DEADLINE_SECONDS}) must be less than LEASE_DURATION_SECONDS (${e.LEASE_DURATION_SECONDS})`);
  }
  let leaseNamespace = e.POD_NAMESPACE;
  if (!leaseNamespace) {
    try {
      leaseNamespace = readFileSync(SA_NAMESPACE_FILE, "utf8").trim();
    } catch {
      leaseNamespace = "default";
    }
  }
  return {
    serverImage: e.ZEROFS_SERVER_IMAGE,
    watchNamespace: e.WATCH_NAMESPACE || undefined,
    leaseNamespace,
    // Pod names are unique at a time; the suffix keeps two processes with one name (a restart
    // racing its predecessor) from both believing they hold the Lease.
    identity: `${e.POD_NAME ?? hostname()}_${Math.random().toString(36).slice(2, 8)}`,
    leaderElect: e.LEADER_ELECT,
    leaseName: e.LEASE_NAME,
    leaseDurationSeconds: e.LEASE_DURATION_SECONDS,
    renewDeadlineMs: e.RENEW_DEADLINE_SECONDS * 1000,
    retryPeriodMs: e.RETRY_PERIOD_SECONDS * 1000,
    httpAddress: e.HTTP_ADDRESS,
    httpPort: e.HTTP_PORT,
    workers: e.WORKERS,
    logLevel: e.LOG_LEVEL,
    deletionPollMs: e.DELETION_POLL_SECONDS * 1000,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_SECONDS * 1000,
    jobBackoffLimit: e.PASSWORD_JOB_BACKOFF_LIMIT,
    network: { ...DEFAULT_NETWORK, allowedCIDRs: e.DEFAULT_ALLOWED_CIDRS, httpAllowedCIDRs: e.HTTP_ALLOWED_CIDRS, networkPolicy: e.NETWORK_POLICY, metricsFrom: e.METRICS_FROM, adminFrom: e.ADMIN_FROM },
    provisioner: e.PROVISIONER,
    usageRefreshMs: e.USAGE_REFRESH_SECONDS * 1000,
    policy: {
      allowCrossNamespaceClaims: e.ALLOW_CROSS_NAMESPACE_CLAIMS,
      allowedImages: e.ALLOWED_SERVER_IMAGES,
      allowTolerations: e.ALLOW_TOLERATIONS,
      allowNodePlacement: e.ALLOW_NODE_PLACEMENT,
      allowedPriorityClasses: e.ALLOWED_PRIORITY_CLASSES,
    },
  };
}
