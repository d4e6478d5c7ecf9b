/**
 * Names of everything the operator creates for a volume. Deterministic, so a reconcile after a
 * crash finds what the previous one made instead of making a second copy.
 */
import { createHash } from "node:crypto";
import type { NormalizedSpec } from "../api/spec.ts";
import type { ZeroFSVolume } from "../api/types.ts";

type Vol = Pick<ZeroFSVolume, "metadata">;

export function shortHash(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 8);
}

/** Deployment and Service. */
export const serverName = (v: Vol): string => `zerofs-${v.metadata.name}`;
/** The operator's copy of the active password (and the rotation state). */
export const passwordSecretName = (v: Vol): string => `zerofs-${v.metadata.name}-password`;
/**
 * The cache claim's name carries a digest of its size and class: a claim's size and class cannot
 * simply be changed, so a new cache setting gets a new claim (the cache is only a copy of data in
 * the store) and the old one is deleted once the server moved.
 */
export const cacheClaimName = (v: Vol, spec: NormalizedSpec): string =>
  `zerofs-${v.metadata.name}-cache-${shortHash(String(spec.cache.size), spec.cache.storageClassName ?? "")}`;
/** PersistentVolumes are cluster-scoped: include the namespace. */
export const persistentVolumeName = (v: Vol): string => `zerofs-${v.metadata.namespace}-${v.metadata.name}`;
export const consumerClaim = (v: Vol, spec: NormalizedSpec): { namespace: string; name: string } => ({
  namespace: spec.persistentVolume.claim.namespace ?? v.metadata.namespace,
  name: spec.persistentVolume.claim.name ?? v.metadata.name,
});
/** Job running the server's password change towards the password whose hash is `targetHash`. */
export const rotationJobName = (v: Vol, targetHash: string): string => `zerofs-${v.metadata.name}-rotate-${shortHash(targetHash)}`;
/** Job checking whether the target password already opens the store (after a failed change). */
export const verifyJobName = (v: Vol, targetHash: string): string => `zerofs-${v.metadata.name}-verify-${shortHash(targetHash)}`;
