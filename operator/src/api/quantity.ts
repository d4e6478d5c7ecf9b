/**
 * Kubernetes resource quantities ("10Gi", "500M", "1.5e9", 1073741824) as byte counts. Used to turn
 * spec.cache.size into SLATEDB_CACHE_SIZE_GB and spec.capacity into ZEROFS_CAPACITY_BYTES, and to
 * compare a desired quantity with the API server's canonical form ("1Gi" vs "1073741824").
 */
const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const QUANTITY_RE = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?\d+)|(n|u|m|k|M|G|T|P|E))?$/;

/** The pattern the CRD uses for quantity strings (same grammar as QUANTITY_RE, anchored). */
export const QUANTITY_PATTERN = "^[+]?(\\d+\\.?\\d*|\\.\\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\\d+|n|u|m|k|M|G|T|P|E)?$";

export class QuantityError extends Error {}

/** Parses a quantity; throws QuantityError naming `what` and the bad value. */
export function parseQuantity(value: string | number, what = "quantity"): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw new QuantityError(`${what}: ${value} is not a non-negative number`);
    return value;
  }
  const m = QUANTITY_RE.exec(value.trim());
  if (!m) throw new QuantityError(`${what}: "${value}" is not a Kubernetes quantity (examples: 10Gi, 500M, 1e9)`);
  const n = Number(m[1]);
  let mult = 1;
  if (m[2]) mult = BINARY[m[2]] ?? 1;
  else if (m[3]) mult = 10 ** Number(m[3].slice(1));
  else if (m[4]) mult = DECIMAL[m[4]] ?? 1;
  const v = n * mult;
  if (!Number.isFinite(v) || v < 0) throw new QuantityError(`${what}: "${value}" is out of range`);
  return v;
}

/** Quantity as whole bytes (rounded up: a fractional byte still needs a byte). */
export function quantityBytes(value: string | number, what?: string): number {
  return Math.ceil(parseQuantity(value, what));
}

/** True when two quantities denote the same amount ("1Gi" and "1073741824"). */
export function sameQuantity(a: string | number, b: string | number): boolean {
  try {
    return parseQuantity(a) === parseQuantity(b);
  } catch {
    return a === b;
  }
}
