/**
 * A key-value entry as it flows between memtable, SSTs and iterators.
 * `value === null` is a tombstone (the key was deleted).
 */
export interface Entry {
  key: Buffer;
  value: Buffer | null;
}

/** Byte-wise key order (the only order the engine knows). */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}
