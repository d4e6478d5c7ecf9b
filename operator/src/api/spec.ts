/**
 * Run-time validation and defaulting of a ZeroFSVolume spec. The API server already enforces the
 * CRD schema (crd/schema.ts, same DEFAULTS), but the operator must not trust that blindly: an
 * object stored under an older schema, or a schema change in flight, must give a clear
 * Ready=False/InvalidSpec with the path of the bad field, never an exception in the reconcile loop.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { DEFAULT_MOUNT_OPTIONS } from "./constants.ts";
import { parseQuantity } from "./quantity.ts";
import type { ZeroFSVolumeSpec } from "./types.ts";

export const DEFAULTS = {
  region: "us-east-1",
  allowHttp: false,
  passwordKey: "password",
  accessKeyIdKey: "AWS_ACCESS_KEY_ID",
  secretAccessKeyKey: "AWS_SECRET_ACCESS_KEY",
  cacheSize: "10Gi",
  logLevel: "info",
  // exports(5) root_squash: uid 0 and gid 0 become the anonymous identity unless asked otherwise.
  squash: "root",
  insecure: false,
  anonId: 65534,
  readOnly: false,
  pvCreate: true,
  claimCreate: true,
  mountOptions: DEFAULT_MOUNT_OPTIONS,
  reclaimPolicy: "Retain",
  pvCapacity: "1Ti",
  deletionPolicy: "Retain",
} as const;

/** s3://bucket[/prefix]; bucket names per S3 rules (lowercase, digits, dots, hyphens). */
export const STORAGE_URL_PATTERN = "^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$";

const quantity = z
  .union([z.string(), z.number()])
  .refine((q) => {
    try {
      parseQuantity(q);
      return true;
    } catch {
      return false;
    }
  }, "not a Kubernetes quantity (examples: 10Gi, 500M)");
const dnsName = z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "not a DNS subdomain name").max(253);
const stringMap = z.record(z.string(), z.string());
const anyObject = z.record(z.string(), z.unknown());
/** A CIDR: an IPv4 or IPv6 address and a prefix length within its family's size. */
export function isCidr(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return false;
  const fam = isIP(m[1]!);
  const len = Number(m[2]);
  return (fam === 4 && len <= 32) || (fam === 6 && len <= 128);
}
const cidr = z.string().refine(isCidr, "not a CIDR (examples: 10.0.0.0/8, fd00::/8)");

const specSchema = z.object({
  storage: z.object({
    url: z.string().regex(new RegExp(STORAGE_URL_PATTERN), "expected s3://bucket/prefix"),
    endpoint: z.url().optional(),
    region: z.string().min(1).default(DEFAULTS.region),
    allowHttp: z.boolean().default(DEFAULTS.allowHttp),
    credentialsSecretRef: z
      .object({
        name: dnsName,
        accessKeyIdKey: z.string().min(1).default(DEFAULTS.accessKeyIdKey),
        secretAccessKeyKey: z.string().min(1).default(DEFAULTS.secretAccessKeyKey),
      })
      .optional(),
  }),
  encryption: z.object({
    passwordSecretRef: z.object({ name: dnsName, key: z.string().min(1).default(DEFAULTS.passwordKey) }),
  }),
  cache: z
    .object({ size: quantity.default(DEFAULTS.cacheSize), storageClassName: z.string().optional() })
    .default({ size: DEFAULTS.cacheSize }),
  server: z
    .object({
      image: z.string().min(1).optional(),
      imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).optional(),
      resources: anyObject.optional(),
      nodeSelector: stringMap.optional(),
      tolerations: z.array(anyObject).optional(),
      affinity: anyObject.optional(),
      podLabels: stringMap.optional(),
      podAnnotations: stringMap.optional(),
      logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default(DEFAULTS.logLevel),
      priorityClassName: z.string().optional(),
    })
    .default({ logLevel: DEFAULTS.logLevel }),
  nfs: z
    .object({
      // Empty or absent: the operator's default list (never "everyone" by omission).
      allowedCIDRs: z.array(cidr).default([]),
      squash: z.enum(["none", "root", "all"]).default(DEFAULTS.squash),
      insecure: z.boolean().default(DEFAULTS.insecure),
      anonUID: z.number().int().min(0).max(4294967295).default(DEFAULTS.anonId),
      anonGID: z.number().int().min(0).max(4294967295).default(DEFAULTS.anonId),
      readOnly: z.boolean().default(DEFAULTS.readOnly),
    })
    .default({ allowedCIDRs: [], squash: DEFAULTS.squash, insecure: DEFAULTS.insecure, anonUID: DEFAULTS.anonId, anonGID: DEFAULTS.anonId, readOnly: DEFAULTS.readOnly }),
  networkPolicy: z
    .object({
      nfsFrom: z.array(anyObject).default([]),
      metricsFrom: z.array(anyObject).default([]),
    })
    .default({ nfsFrom: [], metricsFrom: [] }),
  persistentVolume: z
    .object({
      create: z.boolean().default(DEFAULTS.pvCreate),
      mountOptions: z.array(z.string().min(1)).default([...DEFAULTS.mountOptions]),
      capacity: quantity.optional(),
      reclaimPolicy: z.enum(["Retain", "Delete"]).default(DEFAULTS.reclaimPolicy),
      claim: z
        .object({
          create: z.boolean().default(DEFAULTS.claimCreate),
          name: dnsName.optional(),
          namespace: dnsName.optional(),
        })
        .default({ create: DEFAULTS.claimCreate }),
    })
    .default({
      create: DEFAULTS.pvCreate,
      mountOptions: [...DEFAULTS.mountOptions],
      reclaimPolicy: DEFAULTS.reclaimPolicy,
      claim: { create: DEFAULTS.claimCreate },
    }),
  capacity: quantity.optional(),
  deletionPolicy: z.enum(["Retain", "Delete"]).default(DEFAULTS.deletionPolicy),
});

export type NormalizedSpec = z.infer<typeof specSchema>;

export class InvalidSpecError extends Error {}

/** Validates and defaults a spec; throws InvalidSpecError listing every bad field by path. */
export function normalizeSpec(spec: ZeroFSVolumeSpec | undefined, objectName: string): NormalizedSpec {
  const r = specSchema.safeParse(spec ?? {});
  if (r.success) {
    const s = r.data;
    if (s.deletionPolicy === "Delete" && !/^s3:\/\/[^/]+\/.+/.test(s.storage.url)) {
      throw new InvalidSpecError(
        `${objectName}: spec.deletionPolicy Delete needs a storage.url with a prefix (s3://bucket/prefix); deleting a whole bucket is refused`,
      );
    }
    return s;
  }
  const problems = r.error.issues.map((i) => `spec.${i.path.join(".")}: ${i.message}`);
  throw new InvalidSpecError(`${objectName}: invalid spec: ${problems.join("; ")}`);
}

/** Bucket and key prefix of an s3:// URL ("" prefix for the bucket root). */
export function parseStorageUrl(url: string): { bucket: string; prefix: string } {
  const rest = url.slice("s3://".length);
  const slash = rest.indexOf("/");
  if (slash < 0) return { bucket: rest, prefix: "" };
  return { bucket: rest.slice(0, slash), prefix: rest.slice(slash + 1).replace(/^\/+/, "") };
}
