/**
 * Key and range validation shared by every store, so a key that one backend would reject (or
 * silently map somewhere else) is rejected by all of them with the same message.
 */
import { ObjectStoreError, type StoreOp } from "./errors.ts";
import type { ByteRange } from "./object-store.ts";

/** First path segments the local store keeps for itself (temp files and locks). */
export const RESERVED_TOP_LEVEL = ".tmp";

/** Why `key` is not a valid object key, or null when it is. */
export function keyProblem(key: string): string | null {
  if (typeof key !== "string" || key.length === 0) return "key is empty";
  if (key.includes("\0")) return "key contains a NUL byte";
  if (key.startsWith("/")) return "key is absolute (starts with '/')";
  const segments = key.split("/");
  for (const seg of segments) {
    if (seg === "") return "key has an empty path segment ('//' or a trailing '/')";
    if (seg === "." || seg === "..") return `key has a '${seg}' path segment`;
  }
  if (segments[0] === RESERVED_TOP_LEVEL) return `key starts with the reserved folder '${RESERVED_TOP_LEVEL}/'`;
  return null;
}

export function assertValidKey(store: string, op: StoreOp, key: string): void {
  const problem = keyProblem(key);
  if (problem !== null) throw new ObjectStoreError(store, op, key, `invalid key: ${problem}`);
}

/**
 * A list prefix is any string a valid key could start with: the part up to its last `/` must be
 * a valid folder path (so the local store never walks outside its root).
 */
export function assertValidPrefix(store: string, prefix: string): void {
  if (typeof prefix !== "string") throw new ObjectStoreError(store, "list", String(prefix), "invalid prefix: not a string");
  if (prefix === "") return;
  const slash = prefix.lastIndexOf("/");
  const dir = slash < 0 ? "" : prefix.slice(0, slash);
  const problem = prefix.includes("\0") ? "prefix contains a NUL byte" : dir === "" && slash === 0 ? "prefix is absolute (starts with '/')" : dir === "" ? null : keyProblem(dir);
  if (problem !== null) throw new ObjectStoreError(store, "list", prefix, `invalid prefix: ${problem.replace(/^key/, "prefix")}`);
}

export function assertValidRange(store: string, key: string, range: ByteRange): void {
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new ObjectStoreError(store, "get", key, `invalid range offset=${offset} length=${length} (need non-negative integers)`);
  }
}

/** S3 lists keys in UTF-8 byte order; JS string order differs above U+FFFF, so compare bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
