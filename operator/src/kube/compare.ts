/**
 * "Does the live object already say what we would apply?" Used to skip server-side applies that
 * would change nothing, so that reconciling an unchanged volume makes no API writes.
 *
 * The check is a subset comparison (the API server adds defaults: every field we set must be
 * there with our value; extra live fields are fine), plus a digest of the applied configuration
 * kept in an annotation: a field *removed* from our configuration is invisible to a subset check,
 * but changes the digest, so the apply that removes it still happens.
 */
import { createHash } from "node:crypto";
import { sameQuantity } from "../api/quantity.ts";
import type { KubeObject } from "./types.ts";

export const ANN_APPLIED_DIGEST = "zerofs.io/applied-digest";

/** Keys under which the API server canonicalises quantities ("1024Mi" -> "1Gi", "0.5" -> "500m"). */
const QUANTITY_PARENTS = new Set(["requests", "limits", "capacity"]);
const QUANTITY_KEYS = new Set(["sizeLimit"]);

export function isSubset(desired: unknown, live: unknown, key = "", parent = ""): boolean {
  if (desired === undefined) return true;
  // Go's `omitempty` drops zero values ("" false 0 [] {}) from stored objects, so they read back
  // absent. (A real change of such a field still changes the applied digest.)
  if (live === undefined && isZero(desired)) return true;
  if (desired === null) return live === null || live === undefined;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return false;
    return desired.every((d, i) => isSubset(d, live[i], key, parent));
  }
  if (typeof desired === "object") {
    if (typeof live !== "object" || live === null || Array.isArray(live)) return false;
    const l = live as Record<string, unknown>;
    return Object.entries(desired as Record<string, unknown>).every(([k, v]) => isSubset(v, l[k], k, key));
  }
  if (desired === live) return true;
  if ((QUANTITY_PARENTS.has(parent) || QUANTITY_KEYS.has(key)) && (typeof desired === "string" || typeof desired === "number")) {
    return (typeof live === "string" || typeof live === "number") && sameQuantity(desired, live);
  }
  return false;
}

function isZero(v: unknown): boolean {
  if (v === "" || v === false || v === 0) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === "object" && v !== null && Object.keys(v).length === 0;
}

export function digest(obj: unknown): string {
  return createHash("sha256").update(JSON.stringify(obj)).digest("hex").slice(0, 16);
}

/** Returns `desired` with the digest annotation of its own content added. */
export function withDigest<T extends KubeObject>(desired: T): T {
  const d = digest(desired);
  return { ...desired, metadata: { ...desired.metadata, annotations: { ...desired.metadata.annotations, [ANN_APPLIED_DIGEST]: d } } };
}

/** True when applying `desired` (already carrying its digest) to `live` would change nothing. */
export function upToDate(desired: KubeObject, live: KubeObject | undefined): boolean {
  if (!live) return false;
  const want = desired.metadata.annotations?.[ANN_APPLIED_DIGEST];
  if (want === undefined || live.metadata.annotations?.[ANN_APPLIED_DIGEST] !== want) return false;
  const { resourceVersion: _rv, ...meta } = desired.metadata;
  return isSubset({ ...desired, metadata: meta }, live);
}

/** Structural equality ignoring key order and undefined-valued keys. */
export function deepEqual(a: unknown, b: unknown): boolean {
  return isSubset(a, b) && isSubset(b, a);
}
